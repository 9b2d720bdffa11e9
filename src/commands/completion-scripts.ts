// The completion scripts for bash, zsh and fish. Each is a thin shim: it hands the words on the
// command line to `dbs __complete -- WORDS... CURRENT` and offers what that prints. The first
// line printed is the mode (words, files or dirs), the rest are candidates, one per line.
// The shim calls the same executable the user typed (first word), silences its stderr and
// offers nothing when it fails, so a Tab never prints an error into the shell.

export const SHELLS = ['bash', 'zsh', 'fish'] as const;
export type Shell = (typeof SHELLS)[number];

const bash = `# dbs completion for bash. Install:  dbs completion bash > ~/.local/share/bash-completion/completions/dbs
# or for this shell only:  source <(dbs completion bash)
_dbs_completion() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" out mode IFS=$'\\n'
  out=$("\${COMP_WORDS[0]}" __complete -- "\${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null) || return 0
  mode="\${out%%$'\\n'*}"
  COMPREPLY=()
  case "$mode" in
    files) compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -f -- "$cur")) ;;
    dirs) compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -d -- "$cur")) ;;
    words) [[ "$out" == *$'\\n'* ]] && COMPREPLY=(\${out#*$'\\n'}) ;;
  esac
  return 0
}
complete -F _dbs_completion dbs
`;

const zsh = `#compdef dbs
# dbs completion for zsh. Install:  dbs completion zsh > "\${fpath[1]}/_dbs"   (then: compinit)
# or for this shell only (after compinit):  source <(dbs completion zsh)
_dbs() {
  local -a out cands
  out=("\${(@f)$(\${words[1]} __complete -- "\${(@)words[2,CURRENT]}" 2>/dev/null)}") || return 1
  cands=("\${(@)out[2,-1]}")
  case "\${out[1]}" in
    files) _files ;;
    dirs) _files -/ ;;
    words) (( \${#cands} )) && compadd -- "\${(@)cands}" ;;
  esac
}
if [[ "\${funcstack[1]}" == _dbs ]]; then
  _dbs "$@"
else
  compdef _dbs dbs
fi
`;

const fish = `# dbs completion for fish. Install:  dbs completion fish > ~/.config/fish/completions/dbs.fish
function __dbs_complete
    set -l tokens (commandline -opc)
    set -l cur (commandline -ct)
    set -l out ($tokens[1] __complete -- $tokens[2..-1] "$cur" 2>/dev/null)
    or return 0
    switch "$out[1]"
        case files
            __fish_complete_path "$cur"
        case dirs
            __fish_complete_directories "$cur"
        case words
            printf '%s\\n' $out[2..-1]
    end
end
complete -c dbs -f -a '(__dbs_complete)'
`;

export function completionScript(shell: Shell): string {
  return { bash, zsh, fish }[shell];
}
