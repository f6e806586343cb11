import { LIFECYCLE_INDEX_DEFINITION } from '../support/lifecycle';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadInfraDefinitions, SERVERLESS_YML } from '../../local/infra';

describe('loadInfraDefinitions (serverless.yml as the local stack source of truth)', () => {
  it('reads the queue, dead-letter queue, table and worker settings for the local stage', () => {
    expect(loadInfraDefinitions()).toEqual({
      queue: {
        name: 'referral-rewards-local-queue',
        attributes: { VisibilityTimeout: 360, MessageRetentionPeriod: 345600 },
        maxReceiveCount: 5,
      },
      deadLetterQueue: {
        name: 'referral-rewards-local-dlq',
        attributes: { MessageRetentionPeriod: 1209600 },
      },
      table: {
        name: 'referral-rewards-local-ledger',
        keySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
        attributeDefinitions: [
          { AttributeName: 'pk', AttributeType: 'S' },
          { AttributeName: 'lifecycleQueue', AttributeType: 'S' },
          { AttributeName: 'lifecycleAt', AttributeType: 'N' },
        ],
        billingMode: 'PAY_PER_REQUEST',
        globalSecondaryIndexes: [LIFECYCLE_INDEX_DEFINITION],
      },
      worker: { batchSize: 10, maximumBatchingWindow: 1, timeoutSeconds: 60 },
    });
  });

  it('keeps the visibility timeout at least 6x the worker timeout', () => {
    const { queue, worker } = loadInfraDefinitions();
    expect(queue.attributes.VisibilityTimeout).toBeGreaterThanOrEqual(6 * worker.timeoutSeconds);
  });

  it('substitutes the requested stage into resource names', () => {
    const infra = loadInfraDefinitions(SERVERLESS_YML, 'ci');
    expect(infra.queue.name).toBe('referral-rewards-ci-queue');
    expect(infra.deadLetterQueue.name).toBe('referral-rewards-ci-dlq');
    expect(infra.table.name).toBe('referral-rewards-ci-ledger');
  });

  describe('with an edited copy of serverless.yml', () => {
    let dir: string;
    beforeAll(() => {
      dir = mkdtempSync(join(tmpdir(), 'infra-test-'));
    });
    afterAll(() => {
      rmSync(dir, { recursive: true, force: true });
    });

    const withEdit = (edit: (yml: string) => string): string => {
      const original = readFileSync(SERVERLESS_YML, 'utf8');
      const edited = edit(original);
      expect(edited).not.toBe(original);
      const file = join(dir, `serverless-${Math.random().toString(36).slice(2)}.yml`);
      writeFileSync(file, edited);
      return file;
    };

    it('follows custom.settings instead of hard-coded constants', () => {
      const file = withEdit((yml) =>
        yml
          .replace(/^(\s+)visibilityTimeout: 360$/m, '$1visibilityTimeout: 999')
          .replace(/^(\s+)maxReceiveCount: 5$/m, '$1maxReceiveCount: 7')
          .replace(/^(\s+)workerTimeout: 60$/m, '$1workerTimeout: 42'),
      );
      const infra = loadInfraDefinitions(file);
      expect(infra.queue.attributes.VisibilityTimeout).toBe(999);
      expect(infra.queue.maxReceiveCount).toBe(7);
      expect(infra.worker.timeoutSeconds).toBe(42);
    });

    it('fails loudly on a reference to a setting that does not exist', () => {
      const file = withEdit((yml) => yml.replace('${self:custom.settings.visibilityTimeout}', '${self:custom.settings.nope}'));
      expect(() => loadInfraDefinitions(file)).toThrow(/custom\.settings\.nope/);
    });
  });
});
