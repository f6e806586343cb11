import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  isInputObjectType,
  isListType,
  isNonNullType,
  type GraphQLInputType,
  type GraphQLSchema,
  NoDeprecatedCustomRule,
  parse,
  typeFromAST,
  validate,
} from 'graphql';
import { DEFAULTS } from '../../lib/infra/config';
import type { Fetch } from '../../lib/infra/http';
import { deactivateReward } from '../../lib/adapters/shopify/deactivation';
import { discountCodeIssuer } from '../../lib/adapters/shopify/discount-codes';
import { SHOPIFY_DOCUMENTS } from '../../lib/adapters/shopify/documents';
import { giftCardIssuer } from '../../lib/adapters/shopify/gift-cards';
import { ShopifyTransport } from '../../lib/adapters/shopify/transport';
import { adminSchema, adminSchemaVersions, checkRequest } from '../../local/sandbox/shopify-schema';
import { StaticToken } from '../../lib/adapters/shopify/auth';

/**
 * Every GraphQL document lib/ sends, with the variables the client really builds, against
 * Shopify's published Admin schemas (@shopify/dev-mcp): valid in each supported version, and
 * using nothing deprecated in any of them. Offline; each schema is built once per test file.
 */

const PINNED = DEFAULTS.SHOPIFY_API_VERSION;
/** Shopify supports each stable version for 12 months, so four at a time: the pinned one and the three before it. */
const SUPPORTED = adminSchemaVersions()
  .filter((v) => v <= PINNED)
  .slice(-4);

interface Sent {
  query: string;
  variables: Record<string, unknown>;
}

/** Runs every client method once against a shop that answers everything, and returns what was sent. */
async function documentsSentBy(apiVersion: string): Promise<Sent[]> {
  const sent: Sent[] = [];
  const fetchImpl = (async (_url: string, init?: RequestInit) => {
    const body = JSON.parse(String(init?.body)) as Sent;
    sent.push(body);
    const data = body.query.includes('shop {')
      ? { shop: { currencyCode: 'USD' } }
      : {
          giftCardCreate: { giftCard: { id: 'gid://shopify/GiftCard/1', lastCharacters: 'WXYZ' }, userErrors: [] },
          discountCodeBasicCreate: { codeDiscountNode: { id: 'gid://shopify/DiscountCodeNode/1' }, userErrors: [] },
          giftCards: { nodes: [] },
          codeDiscountNodeByCode: null,
          giftCardDeactivate: { giftCard: { id: 'gid://shopify/GiftCard/1', enabled: false, balance: { amount: '25.0' } }, userErrors: [] },
          discountCodeDeactivate: { codeDiscountNode: { id: 'gid://shopify/DiscountCodeNode/1' }, userErrors: [] },
        };
    return Response.json({ data });
  }) as unknown as Fetch;
  const transport = new ShopifyTransport({
    baseUrl: 'https://shop.myshopify.com',
    auth: new StaticToken('shpat_x'),
    apiVersion,
    fetch: fetchImpl,
    pacer: false,
  });
  const giftCards = giftCardIssuer(transport);
  const discountCodes = discountCodeIssuer(transport, () => Date.parse('2026-12-01T00:00:00.000Z'));
  await giftCards.createGiftCard({ code: 'REFABCD2345WXYZ', amount: '25.00', note: 'referral 0190a1b2 referrer', expiresOn: '2027-01-31' });
  await giftCards.findGiftCardByCode('REFABCD2345WXYZ');
  await discountCodes.createGiftCard({
    code: 'REFABCD2345QQQQ',
    amount: '25.00',
    note: 'referral 0190a1b2 redeemer',
    expiresOn: '2027-01-31',
  });
  await discountCodes.findGiftCardByCode('REFABCD2345QQQQ');
  await deactivateReward(transport, 'gid://shopify/GiftCard/1');
  await deactivateReward(transport, 'gid://shopify/DiscountCodeNode/1');
  return sent;
}

/** Deprecated input fields reached through variables: NoDeprecatedCustomRule sees only literals in the document. */
function deprecatedInputsIn(schema: GraphQLSchema, { query, variables }: Sent): string[] {
  const found: string[] = [];
  const walk = (type: GraphQLInputType, value: unknown, path: string): void => {
    if (isNonNullType(type)) return walk(type.ofType, value, path);
    if (isListType(type)) {
      if (Array.isArray(value)) value.forEach((item, i) => walk(type.ofType, item, `${path}[${i}]`));
      return;
    }
    if (!isInputObjectType(type) || value === null || typeof value !== 'object') return;
    const fields = type.getFields();
    for (const [name, inner] of Object.entries(value)) {
      const field = fields[name];
      if (!field) continue; // an unknown field fails validation instead
      if (field.deprecationReason) found.push(`${path}.${name} (${field.deprecationReason})`);
      walk(field.type, inner, `${path}.${name}`);
    }
  };
  for (const definition of parse(query).definitions) {
    if (definition.kind !== 'OperationDefinition') continue;
    for (const variable of definition.variableDefinitions ?? []) {
      const type = typeFromAST(schema, variable.type) as GraphQLInputType | undefined;
      if (type) walk(type, variables[variable.variable.name.value], `$${variable.variable.name.value}`);
    }
  }
  return found;
}

const operationName = (query: string): string | undefined => /^(?:query|mutation)\s+(\w+)/.exec(query.trim())?.[1];

describe('Shopify documents against the published Admin schemas', () => {
  it('pins the latest stable version that has a published schema', () => {
    expect(PINNED).toBe(adminSchemaVersions().at(-1));
    expect(SUPPORTED).toHaveLength(4);
  });

  it('exercises every document lib/ contains', async () => {
    // Prepare: every `query X` / `mutation X` template literal in lib/
    const libDir = join(__dirname, '..', '..', 'lib');
    const inLib = (readdirSync(libDir, { recursive: true }) as string[])
      .filter((f) => f.endsWith('.ts'))
      .flatMap((f) => [...readFileSync(join(libDir, f), 'utf8').matchAll(/`\s*(?:query|mutation)\s+(\w+)/g)].map((m) => m[1]));

    // Act
    const sent = new Set((await documentsSentBy(PINNED)).map((s) => operationName(s.query)));
    // The shop currency is read for initialAmount versions only; one of those is pinned.

    // Assess
    expect(inLib.sort()).toEqual(Object.keys(SHOPIFY_DOCUMENTS).sort());
    expect([...sent].sort()).toEqual(Object.keys(SHOPIFY_DOCUMENTS).sort());
  });

  describe.each(SUPPORTED)('API version %s', (version) => {
    let schema: GraphQLSchema;
    let sent: Sent[];

    beforeAll(async () => {
      schema = adminSchema(version)!;
      sent = await documentsSentBy(version);
    });

    it('accepts each document with the variables the client builds', () => {
      // Act
      const problems = sent.flatMap((s) => {
        const checked = checkRequest(schema, s.query, s.variables);
        return checked.ok ? [] : checked.errors.map((e) => `${operationName(s.query)}: ${e.message}`);
      });

      // Assess
      expect(problems).toEqual([]);
    });

    it('uses no deprecated field, argument or input field', () => {
      // Act
      const deprecated = sent.flatMap((s) => [
        ...validate(schema, parse(s.query), [NoDeprecatedCustomRule]).map((e) => `${operationName(s.query)}: ${e.message}`),
        ...deprecatedInputsIn(schema, s).map((d) => `${operationName(s.query)}: ${d}`),
      ]);

      // Assess
      expect(deprecated).toEqual([]);
    });
  });
});

describe('the deprecation check itself', () => {
  it('catches a deprecated input field passed in variables', () => {
    // Prepare: initialValue is deprecated from 2026-07 on
    const schema = adminSchema('2026-10')!;
    const sent = { query: SHOPIFY_DOCUMENTS.GiftCardCreate, variables: { input: { code: 'REFABCD2345WXYZ', initialValue: '25.00' } } };

    // Act
    const deprecated = deprecatedInputsIn(schema, sent);

    // Assess
    expect(deprecated).toEqual(['$input.initialValue (Use `initialAmount` instead.)']);
  });

  it('catches a document that drifted from the schema', () => {
    // Prepare
    const schema = adminSchema(PINNED)!;
    const drifted = SHOPIFY_DOCUMENTS.GiftCardCreate.replace('lastCharacters', 'lastFour');

    // Act
    const checked = checkRequest(schema, drifted, {
      input: { code: 'REFABCD2345WXYZ', initialAmount: { amount: '25.00', currencyCode: 'USD' } },
    });

    // Assess
    expect(checked.ok).toBe(false);
  });
});
