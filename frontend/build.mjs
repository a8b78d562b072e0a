// Builds dist/: lab.js (+ map), app.css (+ map) and xterm.css, after rewriting
// src/protocol-constants.js from apps/terminals/protocol.py (the protocol's one source).
// Usage: node build.mjs [--watch]   |   node build.mjs --constants (only the constants)
import * as esbuild from 'esbuild';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { copyFile, mkdir, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(fileURLToPath(import.meta.url));
const dist = join(root, 'dist');
const require = createRequire(import.meta.url);
const watch = process.argv.includes('--watch');

/**
 * Write src/protocol-constants.js as `python3 apps/terminals/protocol.py` prints it
 * ($PYTHON overrides the interpreter; the module needs only the standard library). Without
 * apps/ (the frontend alone) the committed file is used as it is.
 */
function writeProtocolConstants() {
  const py = join(root, '..', 'apps', 'terminals', 'protocol.py');
  const out = join(root, 'src', 'protocol-constants.js');
  if (!existsSync(py)) {
    console.log(`${py} not found: using src/protocol-constants.js as committed`);
    return;
  }
  const text = execFileSync(process.env.PYTHON || 'python3', [py], { encoding: 'utf8' });
  if (!existsSync(out) || readFileSync(out, 'utf8') !== text) {
    writeFileSync(out, text);
    console.log('src/protocol-constants.js rewritten from apps/terminals/protocol.py');
  }
}

writeProtocolConstants();
if (process.argv.includes('--constants')) process.exit(0);

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
  // Pages of their own, each one bundle: the lab editor (CodeMirror), the recordings
  // player (asciinema-player), the live class view, the instructor's watch page and the
  // admin's dashboard (uPlot).
  {
    ...common,
    entryPoints: {
      editor: 'src/editor.js',
      replay: 'src/replay.js',
      classlive: 'src/classlive.js',
      watch: 'src/watch.js',
      dashboard: 'src/dashboard.js',
    },
    outdir: dist,
    format: 'iife',
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
const playerCss = join(root, 'node_modules', 'asciinema-player', 'dist', 'bundle', 'asciinema-player.css');
await copyFile(playerCss, join(dist, 'asciinema-player.css'));
await copyFile(join(root, 'node_modules', 'uplot', 'dist', 'uPlot.min.css'), join(dist, 'uplot.css'));

if (watch) {
  for (const o of options) await (await esbuild.context(o)).watch();
} else {
  await Promise.all(options.map((o) => esbuild.build(o)));
}
