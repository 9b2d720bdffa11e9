import { describe, expect, it } from 'vitest';
import { MAX_PARTS, MAX_PART_SIZE, partSizeFor } from '../../src/storage/s3.js';

describe('multipart part sizes', () => {
  it('grow with the stream so 10,000 parts reach S3 5 TiB object limit', () => {
    const base = 8 * 1024 * 1024;
    let total = 0;
    for (let n = 1; n <= MAX_PARTS; n++) total += partSizeFor(n, base);
    expect(total).toBeGreaterThan(5 * 1024 ** 4);
    expect(partSizeFor(1, base)).toBe(base);
    expect(partSizeFor(1000, base)).toBe(base);
    expect(partSizeFor(1001, base)).toBe(base * 2);
    expect(partSizeFor(MAX_PARTS, base)).toBeLessThanOrEqual(MAX_PART_SIZE);
  });
});
