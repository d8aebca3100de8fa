import nx from '@nx/eslint-plugin';

/**
 * Layering (ARCHITECTURE.md): core libs import no transport and no app; transport turns domain types
 * into protobuf; apps wire things together. `@nx/enforce-module-boundaries` makes lint fail when
 * a project imports across these lines.
 */
export default [
  ...nx.configs['flat/base'],
  ...nx.configs['flat/typescript'],
  {
    ignores: ['**/node_modules/**', '**/dist/**', '**/.nx/**', '**/build/**', 'models/**', '**/vitest.config.ts'],
  },
  {
    files: ['**/*.ts', '**/*.mjs', '**/*.js'],
    rules: {
      '@nx/enforce-module-boundaries': [
        'error',
        {
          enforceBuildableLibDependency: false,
          // Some code loads a library lazily on purpose (tfjs backends, heavy CLI commands); that is
          // about start-up time, not bundles, so static imports of them elsewhere are fine.
          checkDynamicDependenciesExceptions: ['@fedlora/model', '@fedlora/native-cpu', '@fedlora/tensor', '@fedlora/train'],
          allow: [],
          depConstraints: [
            { sourceTag: 'type:core', onlyDependOnLibsWithTags: ['type:core'] },
            { sourceTag: 'type:protocol', onlyDependOnLibsWithTags: ['type:protocol'] },
            { sourceTag: 'type:transport', onlyDependOnLibsWithTags: ['type:core', 'type:protocol', 'type:transport'] },
            { sourceTag: 'type:app', onlyDependOnLibsWithTags: ['type:core', 'type:protocol', 'type:transport', 'type:app'] },
            { sourceTag: 'type:e2e', onlyDependOnLibsWithTags: ['*'] },
            { sourceTag: 'type:bench', onlyDependOnLibsWithTags: ['*'] },
            { sourceTag: 'scope:shared', onlyDependOnLibsWithTags: ['scope:shared'] },
            { sourceTag: 'scope:coordinator', onlyDependOnLibsWithTags: ['scope:shared', 'scope:coordinator'] },
            { sourceTag: 'scope:client', onlyDependOnLibsWithTags: ['scope:shared', 'scope:client'] },
            { sourceTag: 'scope:cli', onlyDependOnLibsWithTags: ['*'] },
          ],
        },
      ],
      '@typescript-eslint/no-non-null-assertion': 'off',
      '@typescript-eslint/no-empty-function': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-restricted-properties': ['error', { object: 'Math', property: 'random', message: 'Use a CSPRNG passed in as a parameter (ARCHITECTURE.md: Decisions, Randomness).' }],
    },
  },
];
