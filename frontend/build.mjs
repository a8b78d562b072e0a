// Builds dist/: lab.js (+ map), app.css (+ map) and xterm.css. Usage: node build.mjs [--watch]
import * as esbuild from 'esbuild';
import { copyFile, mkdir, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(fileURLToPath(import.meta.url));
const dist = join(root, 'dist');
const require = createRequire(import.meta.url);
const watch = process.argv.includes('--watch');

await rm(dist, { recursive: true, force: true });
await mkdir(dist, { recursive: true });

const common = {
  absWorkingDir: root,
  bundle: true,
  minify: true,
  sourcemap: 'linked',
  legalComments: 'eof',
  logLevel: 'info',
};

const options = [
  {
    ...common,
    entryPoints: { lab: 'src/lab.js' },
    outdir: dist,
    format: 'iife',
    globalName: 'LabSite',
    platform: 'browser',
    target: ['es2020', 'chrome90', 'firefox90', 'safari15'],
  },
  {
    ...common,
    entryPoints: { app: 'src/app.css' },
    outdir: dist,
    target: ['chrome90', 'firefox90', 'safari15'],
  },
];

const xtermCss = join(dirname(require.resolve('@xterm/xterm/package.json')), 'css', 'xterm.css');
await copyFile(xtermCss, join(dist, 'xterm.css'));

if (watch) {
  for (const o of options) await (await esbuild.context(o)).watch();
} else {
  await Promise.all(options.map((o) => esbuild.build(o)));
}
