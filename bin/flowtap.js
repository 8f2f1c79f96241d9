#!/usr/bin/env node
// Thin launcher: the CLI is compiled from TypeScript into dist/ by `npm run build`
// (run automatically by `npm ci` / `npm install` through the `prepare` script).
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { dirname, join } from 'node:path';

const here = dirname(fileURLToPath(import.meta.url));
const entry = join(here, '..', 'dist', 'agent', 'cli.js');
if (!existsSync(entry)) {
  process.stderr.write(`flowtap: ${entry} is missing; run \`npm run build\` first\n`);
  process.exit(2);
}
const { main } = await import(pathToFileURL(entry).href);
process.exitCode = await main(process.argv.slice(2));
