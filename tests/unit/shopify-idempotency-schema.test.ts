import { getNamedType, isInputObjectType, type GraphQLField, type GraphQLInputType, type GraphQLSchema } from 'graphql';
import { adminSchema, adminSchemaVersions } from '../../local/sandbox/shopify-schema';

/**
 * A watch on Shopify's published Admin schemas (@shopify/dev-mcp, every stable version it ships):
 * the day the reward creates can be made idempotent by Shopify itself, this fails and says what
 * to change.
 *
 * From Admin API 2026-01 the schema has a directive `@idempotent(key: String!)` on FIELD, "only
 * supported on mutations that explicitly document idempotency support in their description"
 * (its own description). Those mutations (inventoryAdjustQuantities, refundCreate,
 * locationActivate, ...) say so with a line like "As of 2026-01, this mutation supports an
 * optional idempotency key using the `@idempotent` directive" (and a link to
 * https://shopify.dev/docs/api/usage/idempotent-requests). A few older ones take the key as an
 * argument instead (appUsageRecordCreate's `idempotencyKey`). giftCardCreate and
 * discountCodeBasicCreate have neither, up to 2026-10: a create whose answer was lost is found
 * again by its code (TAKEN, then a look-up by code, lib/domain/rewards.ts).
 */

const VERSIONS = adminSchemaVersions();

/** The mutations that create our rewards, and where each is sent. */
const REWARD_CREATES = {
  giftCardCreate: 'lib/adapters/shopify/gift-cards.ts',
  discountCodeBasicCreate: 'lib/adapters/shopify/discount-codes.ts',
} as const;

/** How a schema says a mutation takes an idempotency key; empty when it does not. */
function idempotencySupport(schema: GraphQLSchema, mutation: GraphQLField<unknown, unknown>): string[] {
  const found: string[] = [];
  if (schema.getDirective('idempotent') && /@idempotent\b/.test(mutation.description ?? ''))
    found.push('its description documents the @idempotent directive');
  for (const arg of mutation.args) {
    if (/idempoten/i.test(arg.name)) found.push(`argument ${arg.name}`);
    for (const path of idempotencyInputFields(arg.type, arg.name, new Set())) found.push(`input field ${path}`);
  }
  return found;
}

/** Input fields named like an idempotency key anywhere under `type` (e.g. a GiftCardCreateInput.idempotencyKey). */
function idempotencyInputFields(type: GraphQLInputType, path: string, visited: Set<string>): string[] {
  const named = getNamedType(type);
  if (!isInputObjectType(named) || visited.has(named.name)) return [];
  visited.add(named.name);
  return Object.values(named.getFields()).flatMap((field) => [
    ...(/idempoten/i.test(field.name) ? [`${path}.${field.name}`] : []),
    ...idempotencyInputFields(field.type, `${path}.${field.name}`, visited),
  ]);
}

function mutationField(version: string, name: string): { schema: GraphQLSchema; field: GraphQLField<unknown, unknown> } {
  const schema = adminSchema(version);
  const field = schema?.getMutationType()?.getFields()[name];
  if (!schema || !field) throw new Error(`Admin API ${version} has no mutation ${name}`);
  return { schema, field };
}

describe("Shopify's idempotency key on the reward creates (published Admin schemas)", () => {
  it('reads the published schemas of several stable versions, 2026-01 and later among them', () => {
    expect(VERSIONS.length).toBeGreaterThanOrEqual(2);
    expect(VERSIONS.some((version) => version >= '2026-01')).toBe(true);
  });

  it('recognises the support where Shopify documents it: the @idempotent directive from 2026-01, an idempotencyKey argument', () => {
    // Prepare: mutations whose idempotency the schemas do document
    const directiveVersions = VERSIONS.filter((version) => version >= '2026-01');

    // Act
    const viaDirective = directiveVersions.map((version) => {
      const { schema, field } = mutationField(version, 'inventoryAdjustQuantities');
      return idempotencySupport(schema, field);
    });
    const viaArgument = VERSIONS.map((version) => {
      const { schema, field } = mutationField(version, 'appUsageRecordCreate');
      return idempotencySupport(schema, field);
    });

    // Assess
    for (const support of viaDirective) expect(support).toContain('its description documents the @idempotent directive');
    for (const support of viaArgument) expect(support).toContain('argument idempotencyKey');
  });

  it.each(Object.entries(REWARD_CREATES))('finds no idempotency key on %s in any published stable version', (name, file) => {
    // Act
    const support = VERSIONS.flatMap((version) => {
      const { schema, field } = mutationField(version, name);
      return idempotencySupport(schema, field).map((how) => `${version}: ${how}`);
    });

    // Assess
    if (support.length > 0) {
      throw new Error(
        `Shopify now documents an idempotency key on ${name}:\n  ${support.join('\n  ')}\n` +
          `Use it: in ${file}, send a key derived from the PostHog event uuid and the reward's role ` +
          `(the same on every retry, like the Customer.io event id) on each ${name}, with the first API version ` +
          'that supports it, so Shopify itself dedupes a create whose answer was lost. The TAKEN → look-up-by-code ' +
          'path in lib/domain/rewards.ts then becomes the fallback (older versions, a key Shopify has expired), ' +
          'not the main defence. Then change this test to expect the key.',
      );
    }
    expect(support).toEqual([]);
  });
});
