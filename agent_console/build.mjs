// Bundles the agent console's ES modules (static/console/main.js and what it imports, npm packages
// included) into static/console/dist/console.js with a source map. Run by scripts/ensure-frontend
// (which skips it when nothing changed); `node build.mjs --watch` rebuilds on every save while developing.
// Code splitting: what a module loads with import() (Twilio's Voice SDK, only when the hub says the
// softphone is Twilio's) becomes a chunk of its own under dist/chunks/, fetched on first use.
import * as esbuild from "esbuild";
import { copyFile } from "node:fs/promises";

const options = {
  entryPoints: { console: "static/console/main.js" },
  outdir: "static/console/dist",
  bundle: true,
  splitting: true,
  chunkNames: "chunks/[name]-[hash]",
  format: "esm",
  platform: "browser",
  target: ["es2022", "chrome109", "firefox115", "safari16"],
  minify: true,
  sourcemap: "linked",
  legalComments: "eof", // the MIT notices of the bundled packages stay in the file
  logLevel: "warning",
};

// Co-browsing (docs/subsystems/cobrowse.md): two classic scripts of their own, not the console's modules.
// cobrowse-recorder.js is loaded by the widget (static/widget.js) only after the customer consents;
// cobrowse-replay.js runs in the console's sandboxed replay frame (an opaque origin, where a module script
// would need CORS). Both are IIFEs with rrweb bundled in.
const cobrowse = {
  entryPoints: {
    "cobrowse-recorder": "static/console/cobrowse/recorder.js",
    "cobrowse-replay": "static/console/cobrowse/replay-frame.js",
    "cobrowse-pdf": "static/console/cobrowse/pdf-viewer.js", // the widget's viewer of pushed PDFs (PDF.js)
  },
  outdir: "static/console/dist",
  bundle: true,
  format: "iife",
  platform: "browser",
  target: options.target,
  minify: true,
  sourcemap: "linked",
  legalComments: "eof",
  logLevel: "warning",
};

if (process.argv.includes("--watch")) {
  const ctx = await esbuild.context({ ...options, logLevel: "info" });
  const ctx2 = await esbuild.context({ ...cobrowse, logLevel: "info" });
  await Promise.all([ctx.watch(), ctx2.watch()]);
} else {
  await Promise.all([esbuild.build(options), esbuild.build(cobrowse)]);
}
// PDF.js's worker, as the package ships it (an ES module worker loaded by dist/cobrowse-pdf.js)
await copyFile("node_modules/pdfjs-dist/build/pdf.worker.min.mjs", "static/console/dist/pdf.worker.min.mjs");
