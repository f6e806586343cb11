import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

const HELPER = join(__dirname, '..', '..', 'deploy', 'qualify-silence.js');

/**
 * deploy/qualify-silence.js as osls calls it while reading serverless.yml (a plain Node process:
 * it loads the TypeScript with tsx, which jest's module loader does not host): each stage's
 * QUALIFY_SILENCE in, the alarm's number of one-hour periods (or the deploy's error) out.
 */
function hoursFor(silences: string[]): string[] {
  const script = `
    const helper = require(${JSON.stringify(HELPER)});
    Promise.all(${JSON.stringify(silences)}.map((text) =>
      helper.hours({ resolveVariable: async () => text }).then(String, (error) => 'error: ' + error.message)))
      .then((answers) => process.stdout.write(JSON.stringify(answers)));
  `;
  return JSON.parse(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8' })) as string[];
}

describe('deploy/qualify-silence.js (QUALIFY_SILENCE: the qualifying-events alarm, one-hour periods)', () => {
  it('gives whole hours from 1h to 7d as that many periods', () => {
    // Act
    const answers = hoursFor(['2d', '36h', '1h', '7d']);

    // Assess
    expect(answers).toEqual(['48', '36', '1', '168']);
  });

  it('stops the deploy, naming the setting, under an hour, between hours or past 7 days (never rounded)', () => {
    // Act
    const answers = hoursFor(['30m', '90m', '8d', '2']);

    // Assess
    for (const answer of answers) expect(answer).toMatch(/^error: QUALIFY_SILENCE must be whole hours from 1h to 7d/);
  });
});
