import { describeCounterContract, describeLedgerContract } from '../support/ledger-contract';
import { MemoryLedger } from '../support/memory-ledger';

// The in-memory twin the unit tests use, held to the spec the DynamoDB ledger passes on dynalite
// (tests/integration/ledger-contract.test.ts).
describeLedgerContract('memory (tests/support/memory-ledger.ts)', async (clock) => {
  const ledger = new MemoryLedger(clock.now);
  return { ledger, index: ledger, seed: async (record) => ledger.seed(record) };
});

describeCounterContract('memory (tests/support/memory-ledger.ts)', async (clock) => new MemoryLedger(clock.now));
