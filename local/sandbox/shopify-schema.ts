import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import {
  buildClientSchema,
  FieldsOnCorrectTypeRule,
  getVariableValues,
  GraphQLError,
  type GraphQLSchema,
  type IntrospectionQuery,
  KnownArgumentNamesRule,
  KnownTypeNamesRule,
  NoUndefinedVariablesRule,
  NoUnusedVariablesRule,
  type OperationDefinitionNode,
  parse,
  ProvidedRequiredArgumentsRule,
  ScalarLeafsRule,
  specifiedRules,
  validate,
  type ValidationRule,
  VariablesInAllowedPositionRule,
} from 'graphql';

/**
 * Shopify's own published Admin GraphQL schemas, as the npm package @shopify/dev-mcp ships them
 * (dist/data/admin_<version>.json.gz, an introspection result), and a check of one request against
 * one of them: what the sandbox shop uses to refuse what the real shop would refuse, and what the
 * schema tests use to hold every document we send to the schema. A dev dependency: nothing here
 * is bundled into a Lambda.
 */

const DATA_DIR = findDataDir();
/** Built once per process: gunzip + JSON + buildClientSchema is ~0.3 s per version. */
const schemas = new Map<string, GraphQLSchema>();

function findDataDir(): string | undefined {
  for (const dir of require.resolve.paths('@shopify/dev-mcp') ?? []) {
    const candidate = join(dir, '@shopify', 'dev-mcp', 'dist', 'data');
    if (existsSync(candidate)) return candidate;
  }
  return undefined;
}

/** The stable Admin API versions with a published schema, oldest first (no `unstable`). */
export function adminSchemaVersions(): string[] {
  if (!DATA_DIR) return [];
  return readdirSync(DATA_DIR)
    .map((name) => /^admin_(\d{4}-\d{2})\.json\.gz$/.exec(name)?.[1])
    .filter((version): version is string => version !== undefined)
    .sort();
}

/** The schema of an Admin API version, or undefined when none is published for it. */
export function adminSchema(version: string): GraphQLSchema | undefined {
  const cached = schemas.get(version);
  if (cached) return cached;
  if (!DATA_DIR || !/^(\d{4}-\d{2}|unstable)$/.test(version)) return undefined;
  const file = join(DATA_DIR, `admin_${version}.json.gz`);
  if (!existsSync(file)) return undefined;
  const introspection = JSON.parse(gunzipSync(readFileSync(file)).toString('utf8')) as { data: IntrospectionQuery };
  const schema = buildClientSchema(introspection.data, { assumeValid: true });
  schemas.set(version, schema);
  return schema;
}

/** What Shopify answers a request it cannot run, in its shape: `{ errors: [{ message, locations, extensions: { code } }] }`. */
export interface ShopifyErrorEntry {
  message: string;
  locations?: { line: number; column: number }[];
  path?: (string | number)[];
  extensions?: { code: string };
}

export type RequestCheck =
  { ok: true; operation: OperationDefinitionNode; rootField: string | undefined } | { ok: false; errors: ShopifyErrorEntry[] };

/**
 * Shopify's error codes (graphql-ruby's) for the validation rules graphql-js names differently,
 * e.g. `{"message":"Field 'inventoryItems' doesn't accept argument 'quer'", …, "extensions":
 * {"code":"argumentNotAccepted"}}` (quoted in MONEI/Shopify-api-node#297). Rules not listed get
 * `validationError`; the client only needs to see errors, not which.
 */
const RULE_CODES: [ValidationRule, string][] = [
  [FieldsOnCorrectTypeRule, 'undefinedField'],
  [KnownArgumentNamesRule, 'argumentNotAccepted'],
  [ProvidedRequiredArgumentsRule, 'missingRequiredArguments'],
  [KnownTypeNamesRule, 'undefinedType'],
  [VariablesInAllowedPositionRule, 'variableMismatch'],
  [NoUnusedVariablesRule, 'variableNotUsed'],
  [NoUndefinedVariablesRule, 'variableNotDefined'],
  [ScalarLeafsRule, 'selectionMismatch'],
];

/** Per schema and query text: parsing and validating a document once is enough. */
const documents = new WeakMap<GraphQLSchema, Map<string, RequestCheck>>();

/**
 * Checks a request as Shopify would before running it: the query parses, validates against the
 * schema (every rule graphql-js specifies), and the variables coerce to their declared types.
 * Deprecated fields pass, as they do on Shopify; the schema tests refuse them separately.
 */
export function checkRequest(
  schema: GraphQLSchema,
  query: string,
  variables: Record<string, unknown> | undefined,
  operationName?: string,
): RequestCheck {
  let perSchema = documents.get(schema);
  if (!perSchema) documents.set(schema, (perSchema = new Map()));
  const key = `${operationName ?? ''}\n${query}`;
  let checked = perSchema.get(key);
  if (!checked) {
    checked = checkDocument(schema, query, operationName);
    perSchema.set(key, checked);
  }
  if (!checked.ok) return checked;
  const coerced = getVariableValues(schema, checked.operation.variableDefinitions ?? [], variables ?? {});
  if (coerced.errors) return { ok: false, errors: coerced.errors.map((e) => entry(e, 'INVALID_VARIABLE')) };
  return checked;
}

function checkDocument(schema: GraphQLSchema, query: string, operationName: string | undefined): RequestCheck {
  let document;
  try {
    document = parse(query);
  } catch (error) {
    // Shopify answers a syntax error with a message and its location, no code:
    // {"errors":[{"message":"Parse error on \")\" (RPAREN) at [1, 28]","locations":[…]}]} (Shopify/shopify-cli#668).
    return { ok: false, errors: [entry(error as GraphQLError)] };
  }
  const errors = validate(schema, document, specifiedRules);
  if (errors.length > 0) return { ok: false, errors: errors.map((e) => entry(e, codeFor(schema, document, e))) };
  const operations = document.definitions.filter((d): d is OperationDefinitionNode => d.kind === 'OperationDefinition');
  const operation = operationName
    ? operations.find((o) => o.name?.value === operationName)
    : operations.length === 1
      ? operations[0]
      : undefined;
  if (!operation) return { ok: false, errors: [{ message: 'An operation name is required', extensions: { code: 'operationNotFound' } }] };
  const first = operation.selectionSet.selections[0];
  return { ok: true, operation, rootField: first?.kind === 'Field' ? first.name.value : undefined };
}

function codeFor(schema: GraphQLSchema, document: ReturnType<typeof parse>, error: GraphQLError): string {
  for (const [rule, code] of RULE_CODES) {
    if (validate(schema, document, [rule]).some((e) => e.message === error.message)) return code;
  }
  return 'validationError';
}

function entry(error: GraphQLError, code?: string): ShopifyErrorEntry {
  return {
    message: error.message,
    ...(error.locations ? { locations: error.locations.map(({ line, column }) => ({ line, column })) } : {}),
    ...(error.path ? { path: [...error.path] } : {}),
    ...(code ? { extensions: { code } } : {}),
  };
}
