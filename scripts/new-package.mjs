#!/usr/bin/env node
// Scaffolds packages/<folder> on the repo's package pattern:
//   npm run new-package -- protocol-foo [--description "..."] [--npm-name robustmq-protocol-foo]
// It writes package.json (exports map with types, files whitelist, scripts), tsconfig files,
// src/index.ts, test/, README.md, registers the package in the root tsconfig references and
// adds a changeset announcing it. It never overwrites an existing folder.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    description: { type: 'string', default: '' },
    'npm-name': { type: 'string' },
  },
});

const folder = positionals[0];
if (!folder || !/^[a-z][a-z0-9-]*$/.test(folder)) {
  console.error('usage: npm run new-package -- <folder> [--description TEXT] [--npm-name NAME]');
  console.error('  <folder> is lower-case, e.g. protocol-foo or storage-bar');
  process.exit(2);
}
const dir = join(root, 'packages', folder);
if (existsSync(dir)) {
  console.error(`packages/${folder} already exists`);
  process.exit(1);
}
const name = values['npm-name'] ?? `@robustmq/${folder}`;
const description = values.description || `RobustMQ ${folder}`;
const coreVersion = JSON.parse(readFileSync(join(root, 'packages/core/package.json'), 'utf8')).version;

const write = (file, text) => {
  mkdirSync(dirname(join(dir, file)), { recursive: true });
  writeFileSync(join(dir, file), text);
};

write(
  'package.json',
  JSON.stringify(
    {
      name,
      version: '0.1.0',
      description,
      license: 'Apache-2.0',
      type: 'module',
      engines: { node: '>=20' },
      exports: {
        '.': { types: './dist/index.d.ts', default: './dist/index.js' },
        './package.json': './package.json',
      },
      files: ['dist', '!dist/**/*.tsbuildinfo', 'README.md'],
      scripts: {
        build: 'tsc -b',
        typecheck: 'tsc -p tsconfig.test.json --noEmit',
        lint: 'eslint src test && publint --strict && attw --pack --profile esm-only',
        test: 'vitest run',
      },
      dependencies: { '@robustmq/core': `^${coreVersion}` },
      repository: {
        type: 'git',
        url: 'git+https://github.com/robustmq/robustmq-ts.git',
        directory: `packages/${folder}`,
      },
      publishConfig: { access: 'public' },
    },
    null,
    2,
  ) + '\n',
);
write(
  'tsconfig.json',
  JSON.stringify(
    {
      extends: '../../tsconfig.base.json',
      compilerOptions: { rootDir: 'src', outDir: 'dist' },
      include: ['src'],
      references: [{ path: '../core' }],
    },
    null,
    2,
  ) + '\n',
);
write(
  'tsconfig.test.json',
  JSON.stringify(
    {
      extends: '../../tsconfig.base.json',
      compilerOptions: { composite: false, noEmit: true, rootDir: '.' },
      include: ['src', 'test'],
    },
    null,
    2,
  ) + '\n',
);
write('src/index.ts', `// ${description}\nexport {};\n`);
write('test/.gitkeep', '');
write('README.md', `# ${name}\n\n${description}.\n\n\`\`\`sh\nnpm install ${name}\n\`\`\`\n`);

const tsconfigPath = join(root, 'tsconfig.json');
const tsconfig = JSON.parse(readFileSync(tsconfigPath, 'utf8'));
tsconfig.references.push({ path: `packages/${folder}` });
writeFileSync(tsconfigPath, JSON.stringify(tsconfig, null, 2) + '\n');

writeFileSync(
  join(root, '.changeset', `new-${folder}.md`),
  `---\n'${name}': minor\n---\n\nNew package ${name}: ${description}.\n`,
);

execFileSync('npx', ['prettier', '--write', '--log-level', 'warn', dir, tsconfigPath], { stdio: 'inherit' });

console.log(`created packages/${folder} (${name})`);
console.log('next: write src/ and test/, then `npm install` at the root to link it into the workspace');
