import { ROLES } from '../lib/adapters/dynamodb/ledger';
import { giftCardNote } from '../lib/domain/rewards';
import type { BenchStack } from './stack';
import { mapConcurrent } from './stats';

/**
 * Referrals not fulfilled exactly once: ledger COMPLETED, exactly the two cards with this
 * referral's notes, exactly one Customer.io event with its id; and nothing in the DLQ.
 */
export async function countLost(stack: BenchStack, eventIds: readonly string[]): Promise<{ lost: number; problems: string[] }> {
  const cardsByNote = new Map<string, number>();
  for (const card of stack.shopify.cards) if (card.note) cardsByNote.set(card.note, (cardsByNote.get(card.note) ?? 0) + 1);
  const eventsById = new Map<string, number>();
  for (const event of stack.customerio.events) eventsById.set(event.id.toUpperCase(), (eventsById.get(event.id.toUpperCase()) ?? 0) + 1);

  const problems: string[] = [];
  const verdicts = await mapConcurrent(eventIds, 16, async (eventId) => {
    const record = await stack.ledger.get(eventId);
    const cards = ROLES.map((role) => cardsByNote.get(giftCardNote(eventId, role)) ?? 0);
    const events = record ? (eventsById.get(record.customerioEventId.toUpperCase()) ?? 0) : 0;
    const ok = record?.status === 'COMPLETED' && cards.every((n) => n === 1) && events === 1;
    if (!ok && problems.length < 5) {
      problems.push(`${eventId}: ledger ${record?.status ?? 'missing'}, cards ${cards.join('+')}, Customer.io events ${events}`);
    }
    return ok;
  });
  const dlq = await stack.depth(stack.resources.deadLetterQueueUrl);
  if (dlq.visible + dlq.inFlight > 0) problems.push(`${dlq.visible + dlq.inFlight} message(s) in the DLQ`);
  const extraCards = stack.shopify.cards.length - 2 * eventIds.length;
  if (extraCards !== 0) problems.push(`${stack.shopify.cards.length} cards on the shop for ${eventIds.length} referrals`);
  const lost = verdicts.filter((ok) => !ok).length;
  return { lost: Math.max(lost, dlq.visible + dlq.inFlight), problems };
}
