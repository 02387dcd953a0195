// Bundles the agent console's ES modules (static/console/main.js and what it imports, npm packages
// included) into static/console/dist/console.js with a source map. Run by scripts/ensure-frontend
// (which skips it when nothing changed); `node build.mjs --watch` rebuilds on every save while developing.
// Code splitting: what a module loads with import() (Twilio's Voice SDK, only when the hub says the
// softphone is Twilio's) becomes a chunk of its own under dist/chunks/, fetched on first use.
import * as esbuild from "esbuild";

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

if (process.argv.includes("--watch")) {
  const ctx = await esbuild.context({ ...options, logLevel: "info" });
  await ctx.watch();
} else {
  await esbuild.build(options);
}
