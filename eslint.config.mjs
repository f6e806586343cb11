// Lint: ESLint's and typescript-eslint's recommended rules (syntax only, no type information, so
// the whole tree lints in seconds). Formatting is Prettier's job (.prettierrc.json), not a rule's.
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/', '.serverless/', '.esbuild/', '.local/', 'coverage/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { ecmaVersion: 2023, sourceType: 'module', globals: { ...globals.node } },
    rules: {
      // A `let` read by a closure before its one assignment (a test's hook set up front) stays a `let`.
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
      // A leading underscore names what is taken only to be left out (a rest sibling, a callback's
      // unused argument); everything else unused is an error.
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_', ignoreRestSiblings: true },
      ],
    },
  },
  {
    // CommonJS on purpose: serverless.yml's ${file(...)} helpers and the child-process runners of the
    // artefact test are plain Node scripts, loaded without a bundler.
    files: ['**/*.cjs', 'deploy/**/*.js'],
    languageOptions: { sourceType: 'commonjs' },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    // Tests read vendors' JSON (schemas, recorded answers, CloudFormation) whose shape is the thing under test.
    files: ['tests/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
);
