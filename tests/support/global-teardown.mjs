import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export default async function globalTeardown() {
  await globalThis.__EMULATORS__?.stop();
  // The run's shared package (sharedPackageDir in tests/support/serverless-package.ts), if a test built one.
  if (process.env.TEST_RUN_ID)
    rmSync(join(tmpdir(), `referral-rewards-ci-package-${process.env.TEST_RUN_ID}`), { recursive: true, force: true });
}
