import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { load } from 'js-yaml';
import { DEFAULTS, RECONCILER_DEFAULTS, SECRET_KEYS } from '../../lib/infra/config';
import { APP_SECRET_KEYS, RECONCILER_SECRET_KEYS, WEBHOOK_SECRET_KEYS } from '../../lib/infra/secrets';

// The docs are what a person configures a stage from. These tests hold README's configuration
// table and every secret the docs tell people to write to what the code reads: a setting the
// loaders do not know, a default that differs, or a secret key no function takes is a stage that
// silently does something else than its operator was told. Rows may be added, reordered or
// reworded (the tests read any table row whose first cell names settings); what a row says must
// be true.

const ROOT = join(__dirname, '..', '..');
const read = (path: string): string => readFileSync(join(ROOT, path), 'utf8');

const LOADER_FILES = readdirSync(join(ROOT, 'lib', 'infra'))
  .filter((file) => /^config.*\.ts$/.test(file) || file === 'settings.ts' || file === 'secrets.ts')
  .map((file) => join('lib', 'infra', file));
const LOADER_SOURCE = LOADER_FILES.map(read).join('\n');
const LOCAL_SOURCE = readdirSync(join(ROOT, 'local'), { recursive: true, encoding: 'utf8' })
  .filter((file) => file.endsWith('.ts'))
  .map((file) => read(join('local', file)))
  .join('\n');

interface ServerlessFile {
  params: { default: Record<string, unknown> };
  custom: { settings: Record<string, unknown> };
  functions: Record<string, { environment?: Record<string, unknown> }>;
}
const SERVERLESS = load(read('serverless.yml')) as ServerlessFile;
const SERVERLESS_TEXT = read('serverless.yml');

const isEnvName = (name: string): boolean => /^[A-Z][A-Z0-9_]*$/.test(name);
/** Code that reads the setting (`env.X`, `'X'`, a `X:` key), not a comment that mentions it. */
const reads = (source: string, name: string): boolean => new RegExp(`env\\.${name}\\b|['"\`]${name}['"\`]|\\b${name}:`).test(source);

/** What a function reads when the setting is unset: the loaders' DEFAULTS, or an inline `env.X?.trim() || 'v'`. */
function loaderDefault(name: string): string | undefined {
  const tables: Record<string, string> = { ...DEFAULTS, ...RECONCILER_DEFAULTS };
  if (name in tables) return tables[name];
  const inline = new RegExp(`env\\.${name}\\?\\.trim\\(\\)(?:\\.toLowerCase\\(\\))?\\s*\\|\\|\\s*'([^']*)'`).exec(LOADER_SOURCE);
  return inline?.[1];
}

/** Whether a deploy can set it: a stage param, or passed to a function's environment by serverless.yml. */
function settableInAws(name: string): boolean {
  const inEnvironment = Object.values(SERVERLESS.functions).some((fn) => fn.environment && name in fn.environment);
  return name in SERVERLESS.params.default || inEnvironment || SERVERLESS_TEXT.includes(`\${param:${name}}`);
}

interface Row {
  names: string[];
  defaults: string[];
  defaultCell: string;
  meaning: string;
}

const cells = (line: string): string[] =>
  line
    .replace(/^\|/, '')
    .replace(/\|\s*$/, '')
    .split('|')
    .map((cell) => cell.trim());
const backticked = (text: string): string[] => [...text.matchAll(/`([^`]+)`/g)].map((match) => match[1]);

/** README's "Configuration" table: every row whose first cell names settings in backticks. */
function configurationRows(): Row[] {
  const readme = read('README.md');
  const section = readme.slice(readme.indexOf('\n## Configuration'), readme.indexOf('\n## ', readme.indexOf('\n## Configuration') + 1));
  return section
    .split('\n')
    .filter((line) => line.startsWith('| `'))
    .map((line) => {
      const [nameCell, defaultCell, ...rest] = cells(line);
      const names = backticked(nameCell)
        .filter((token) => !token.endsWith('.yml'))
        .map((token) => token.replace(/^custom\.settings\./, ''));
      return { names, defaults: backticked(defaultCell), defaultCell, meaning: rest.join(' | ') };
    });
}

/** A deploy-time setting (a stage param or `custom.settings`): read by serverless.yml or its deploy/ helpers, not a function's loader. */
const isDeployTime = (row: Row): boolean => /^deploy time\b/i.test(row.meaning);
const DEPLOY_SOURCE = [SERVERLESS_TEXT, ...readdirSync(join(ROOT, 'deploy')).map((file) => read(join('deploy', file)))].join('\n');
const readByDeploy = (name: string): boolean => reads(DEPLOY_SOURCE, name) || DEPLOY_SOURCE.includes(`param:${name}`);

const isLocalOnly = (row: Row): boolean => /\blocal (stack )?only\b/i.test(row.meaning);
const isSecret = (row: Row): boolean => /\*\*secret\*\*/.test(row.meaning);
const documentsNoDefault = (row: Row): boolean => /^(unset|empty|—|-|required)\b/i.test(row.defaultCell);

/** The default a row documents for its i-th name: a literal, 'none', or undefined for prose (derived defaults). */
function documentedDefault(row: Row, index: number): string | 'none' | undefined {
  if (documentsNoDefault(row)) return 'none';
  if (!row.defaultCell.startsWith('`')) return undefined;
  const literal = row.defaults.length === row.names.length ? row.defaults[index] : row.defaults[0];
  return literal.includes('$') ? undefined : literal;
}

describe("README's configuration table matches the loaders", () => {
  const rows = configurationRows();
  const appSettings = rows.flatMap((row) => row.names.filter(isEnvName).map((name, index) => ({ row, name, index })));

  it('reads a table with the settings in it', () => {
    // Prepare
    const names = appSettings.map(({ name }) => name);

    // Act
    const expected = ['WEBHOOK_SECRET', 'REWARD_AMOUNT', 'SHOPIFY_STORE_DOMAIN', 'RECONCILE_FROM', 'DRY_RUN'];

    // Assess
    expect(names).toEqual(expect.arrayContaining(expected));
  });

  it('names only settings a loader reads (local ones: the local stack)', () => {
    // Prepare
    const powertools = (meaning: string): boolean => /powertools/i.test(meaning);

    // Act
    const unknown = appSettings
      .filter(({ row, name }) => {
        if (reads(LOADER_SOURCE, name)) return false;
        if (isLocalOnly(row)) return !reads(LOCAL_SOURCE, name);
        if (isDeployTime(row)) return !readByDeploy(name);
        return !(powertools(row.meaning) && settableInAws(name));
      })
      .map(({ name }) => name);

    // Assess
    expect(unknown).toEqual([]);
  });

  it('documents the default each loader applies', () => {
    // Prepare
    const checked = appSettings.filter(({ row, name }) => reads(LOADER_SOURCE, name) && !isLocalOnly(row));

    // Act
    const wrong = checked.flatMap(({ row, name, index }) => {
      const documented = documentedDefault(row, index);
      const actual = loaderDefault(name);
      if (documented === undefined) return [];
      if (documented === 'none') return actual === undefined ? [] : [`${name}: README says no default, the loader uses '${actual}'`];
      return actual === documented ? [] : [`${name}: README says '${documented}', the loader uses '${actual ?? '(none)'}'`];
    });

    // Assess
    expect(checked.length).toBeGreaterThan(20);
    expect(wrong).toEqual([]);
  });

  it("gives serverless.yml's stage defaults the values README documents", () => {
    // Prepare
    const params = SERVERLESS.params.default;

    // Act
    const wrong = appSettings.flatMap(({ row, name, index }) => {
      const documented = documentedDefault(row, index);
      const param = params[name];
      // An empty param leaves the loader's default in force (checked above).
      if (param === undefined || param === '' || documented === undefined) return [];
      if (documented === 'none') return [`${name}: README says no default, serverless.yml's default stage sets '${String(param)}'`];
      return String(param) === documented
        ? []
        : [`${name}: README says '${documented}', serverless.yml's default stage sets '${String(param)}'`];
    });

    // Assess
    expect(wrong).toEqual([]);
  });

  it('marks local only exactly the settings a deploy cannot set', () => {
    // Prepare
    const nonSecret = appSettings.filter(({ row }) => !isSecret(row));

    // Act
    const wrong = nonSecret.flatMap(({ row, name }) => {
      if (isLocalOnly(row) && settableInAws(name)) return [`${name}: marked local only, but serverless.yml passes it`];
      if (!isLocalOnly(row) && !settableInAws(name)) return [`${name}: not marked local only, but serverless.yml never passes it`];
      return [];
    });

    // Assess
    expect(wrong).toEqual([]);
  });

  it('marks secret only keys that a function reads from a secret', () => {
    // Prepare
    const secretKeys: readonly string[] = [...SECRET_KEYS, ...WEBHOOK_SECRET_KEYS, ...RECONCILER_SECRET_KEYS, ...APP_SECRET_KEYS];

    // Act
    const wrong = appSettings.filter(({ row, name }) => isSecret(row) && !secretKeys.includes(name)).map(({ name }) => name);

    // Assess
    expect(wrong).toEqual([]);
  });

  it('gives deploy-time settings the values serverless.yml has', () => {
    // Prepare
    const deployRows = rows.flatMap((row) => row.names.filter((name) => !isEnvName(name)).map((name, index) => ({ row, name, index })));

    // Act
    const wrong = deployRows.flatMap(({ row, name, index }) => {
      const value = name in SERVERLESS.custom.settings ? SERVERLESS.custom.settings[name] : SERVERLESS.params.default[name];
      if (value === undefined) return [`${name}: not in serverless.yml's custom.settings or default params`];
      const documented = /^empty\b/i.test(row.defaultCell) ? '' : row.defaults[row.defaults.length === row.names.length ? index : 0];
      return String(value) === documented ? [] : [`${name}: README says '${documented}', serverless.yml has '${String(value)}'`];
    });

    // Assess
    expect(deployRows.length).toBeGreaterThan(2);
    expect(wrong).toEqual([]);
  });
});

// ── Secrets ─────────────────────────────────────────────────────────────────────────────────

/** How the docs name a stage's secret: the placeholder `<stage>`, or the guide's example stage `prod`. */
const DOC_SECRET_ID = /^referral-rewards\/(?:<stage>|prod)\/([a-z]+)$/;

/**
 * The keys each secret's function takes (lib/infra/secrets.ts), by the secret's name; none for a
 * name that is not one of the four, so a key written to a mistyped or retired secret is refused.
 * The worker's loader also still takes the webhook keys (a stage from before the secrets were
 * split kept them in one), but no worker code uses them: the worker's secret is documented
 * without them.
 */
function acceptedKeys(secretId: string): readonly string[] {
  const role = DOC_SECRET_ID.exec(secretId)?.[1];
  if (role === 'webhook') return WEBHOOK_SECRET_KEYS;
  if (role === 'reconciler') return RECONCILER_SECRET_KEYS;
  if (role === 'app') return APP_SECRET_KEYS;
  if (role === 'worker') return SECRET_KEYS.filter((key) => !(WEBHOOK_SECRET_KEYS as readonly string[]).includes(key));
  return [];
}

const DOCS = ['README.md', 'docs/SETUP.md', 'docs/OPERATIONS.md'];
const ALL_DOCS = [
  'README.md',
  ...readdirSync(join(ROOT, 'docs'))
    .filter((file) => file.endsWith('.md'))
    .map((file) => join('docs', file)),
];

/** README's upgrade from the single `referral-rewards/<stage>` secret names the retired id on purpose. */
const LEGACY_BLOCK = /<!-- legacy-worker-secret-upgrade:start[^>]*-->[\s\S]*?<!-- legacy-worker-secret-upgrade:end -->/g;

/** What serverless.yml names each Secrets Manager secret, after `${self:service}/${sls:stage}/`. */
function serverlessSecretRoles(): string[] {
  const resources = (load(SERVERLESS_TEXT) as { resources: { Resources: Record<string, { Type: string; Properties: { Name: string } }> } })
    .resources.Resources;
  return Object.values(resources)
    .filter((resource) => resource.Type === 'AWS::SecretsManager::Secret')
    .map((resource) => {
      const match = /^\$\{self:service\}\/\$\{sls:stage\}\/([a-z]+)$/.exec(resource.Properties.Name);
      if (!match) throw new Error(`serverless.yml names a secret ${resource.Properties.Name}, not <service>/<stage>/<role>`);
      return match[1];
    });
}

/**
 * Every secret id a doc hands to `--secret-id`, outside README's legacy upgrade block. A shell
 * variable (`--secret-id "$id"`) stands for the ids of the `for` loop that sets it.
 */
function documentedSecretIds(text: string): string[] {
  const outside = text.replace(LEGACY_BLOCK, '');
  const direct = [...outside.matchAll(/--secret-id[ =]+(\S+)/g)]
    .map((match) => match[1])
    .filter((id) => !id.replace(/^["']/, '').startsWith('$'));
  const looped = [...outside.matchAll(/\bfor \w+ in ([^;\n]+);/g)].flatMap((match) =>
    match[1].split(/\s+/).filter((id) => id.startsWith('referral-rewards')),
  );
  return [...direct, ...looped];
}

/** Every JSON key written by a `put-secret-value` example, with the secret it is written to. */
function putSecretKeys(doc: string): { secretId: string; key: string }[] {
  const blocks = [...read(doc).matchAll(/```\w*\n([\s\S]*?)```/g)]
    .map((match) => match[1])
    .filter((block) => block.includes('put-secret-value'));
  return blocks.flatMap((block) => {
    const ids = [...block.matchAll(/--secret-id\s+(\S+)/g)].map((match) => match[1]);
    // One command per block: its JSON may be written before it (a heredoc, printf). Several: each
    // command carries its own JSON inline.
    const commands =
      ids.length === 1
        ? [{ id: ids[0], text: block }]
        : block
            .split(/(?=aws secretsmanager put-secret-value)/)
            .slice(1)
            .map((text) => ({ id: /--secret-id\s+(\S+)/.exec(text)?.[1] ?? '', text }));
    return commands.flatMap(({ id, text }) =>
      [...text.matchAll(/"([A-Z][A-Z0-9_]+)"\s*:/g)].map((match) => ({ secretId: id, key: match[1] })),
    );
  });
}

/** Rows of the docs' tables that start with a secret's name: the secret and the keys the row lists. */
function secretTableRows(doc: string): { secretId: string; keys: string[] }[] {
  return read(doc)
    .split('\n')
    .filter((line) => /^\| `referral-rewards\/<stage>[^`]*` \|/.test(line))
    .map((line) => {
      const [first, ...rest] = cells(line);
      return { secretId: backticked(first)[0], keys: backticked(rest.join(' ')).filter(isEnvName) };
    });
}

describe('the secrets the docs name are the ones the stack creates', () => {
  it("finds serverless.yml's four secrets", () => {
    // Prepare
    const expected = ['app', 'reconciler', 'webhook', 'worker'];

    // Act
    const roles = serverlessSecretRoles().sort();

    // Assess
    expect(SERVERLESS_TEXT).toMatch(/^service: referral-rewards$/m);
    expect(roles).toEqual(expected);
  });

  it.each(ALL_DOCS)('%s: every --secret-id is one of those secrets', (doc) => {
    // Prepare
    const roles = serverlessSecretRoles();

    const ids = documentedSecretIds(read(doc));

    // Act
    const wrong = ids.filter((id) => {
      const role = DOC_SECRET_ID.exec(id)?.[1];
      return role === undefined || !roles.includes(role);
    });

    // Assess
    if (DOCS.includes(doc)) expect(ids.length).toBeGreaterThan(0);
    expect(wrong).toEqual([]);
  });

  it('refuses a retired or mistyped secret id', () => {
    // Prepare
    const doc = [
      'aws secretsmanager put-secret-value --secret-id referral-rewards/prod --secret-string file:///tmp/x.json',
      'aws secretsmanager get-secret-value --secret-id referral-rewards/prod/workers',
      'for id in referral-rewards/prod/webhook referral-rewards/<stage>/reconcilers; do',
      '  aws secretsmanager get-secret-value --secret-id "$id"',
      'done',
      '<!-- legacy-worker-secret-upgrade:start -->',
      'aws secretsmanager delete-secret --secret-id referral-rewards/staging',
      '<!-- legacy-worker-secret-upgrade:end -->',
    ].join('\n');
    const roles = serverlessSecretRoles();

    // Act
    const wrong = documentedSecretIds(doc).filter((id) => !roles.includes(DOC_SECRET_ID.exec(id)?.[1] ?? ''));

    // Assess
    expect(wrong).toEqual(['referral-rewards/prod', 'referral-rewards/prod/workers', 'referral-rewards/<stage>/reconcilers']);
  });

  it('gives no keys to a secret id that is not one of the four', () => {
    // Prepare
    const ids = ['referral-rewards/prod', 'referral-rewards/prod/workers', 'referral-rewards/dev/worker'];

    // Act
    const keys = ids.flatMap((id) => acceptedKeys(id));

    // Assess
    expect(keys).toEqual([]);
  });
});

describe('the secrets the docs write are the ones the functions read', () => {
  it.each(DOCS)('%s: every put-secret-value key is one its secret takes', (doc) => {
    // Prepare
    const written = putSecretKeys(doc);

    // Act
    const refused = written
      .filter(({ secretId, key }) => !acceptedKeys(secretId).includes(key))
      .map(({ secretId, key }) => `${key} in ${secretId}`);

    // Assess
    if (doc !== 'docs/OPERATIONS.md') expect(written.length).toBeGreaterThan(0);
    expect(refused).toEqual([]);
  });

  it.each(['docs/SETUP.md', 'docs/OPERATIONS.md'])("%s: each secret's table row lists exactly the keys its function takes", (doc) => {
    // Prepare
    const rows = secretTableRows(doc);

    // Act
    const wrong = rows.flatMap(({ secretId, keys }) => {
      const accepted = acceptedKeys(secretId);
      const extra = keys.filter((key) => !accepted.includes(key)).map((key) => `${secretId}: lists ${key}, which it does not take`);
      const missing = accepted.filter((key) => !keys.includes(key)).map((key) => `${secretId}: leaves out ${key}`);
      return [...extra, ...missing];
    });

    // Assess
    expect(rows.map(({ secretId }) => secretId).sort()).toEqual([
      'referral-rewards/<stage>/app',
      'referral-rewards/<stage>/reconciler',
      'referral-rewards/<stage>/webhook',
      'referral-rewards/<stage>/worker',
    ]);
    expect(wrong).toEqual([]);
  });
});
