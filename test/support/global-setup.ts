// vitest globalSetup: starts NO server up front. It serves the run's SharedServers
// (shared-servers.ts) on a loopback port and provides its URL to the test files as
// inject('testbedUrl'); a test file that needs MariaDB, Redis or S3 asks for it with
// `await servers(...)` (testbed.ts), the first such request starts that server in this
// (main) process and later ones reuse it. Teardown stops whatever was started. A server
// that cannot start fails every test file that asked for it (never skipped).

import type { TestProject } from 'vitest/node';
import { serveSharedServers, SharedServers } from './shared-servers.js';

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const servers = new SharedServers();
  const coordinator = await serveSharedServers(servers);
  project.provide('testbedUrl', coordinator.url);
  return async () => {
    await coordinator.close();
    await servers.stopAll();
  };
}
