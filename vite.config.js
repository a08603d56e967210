// Builds frontend/ into static/ for tower-http to serve under /static/.
// The manifest (static/.vite/manifest.json) maps "main.js" to its hashed
// file and its "css" array, so templates can link the current files.
import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";

const root = fileURLToPath(new URL("./frontend", import.meta.url));

export default defineConfig({
  root,
  base: "/static/",
  publicDir: false,
  build: {
    outDir: "../static",
    emptyOutDir: false,
    assetsDir: "assets",
    manifest: true,
    sourcemap: false,
    rollupOptions: {
      input: fileURLToPath(new URL("./frontend/main.js", import.meta.url)),
      onwarn(warning, warn) {
        // htmx evaluates hx-on / event-filter expressions by design; its
        // eval is known and not ours to fix. Every other warning shows.
        if (warning.code === "EVAL" && warning.id && warning.id.includes("/node_modules/htmx.org/")) {
          return;
        }
        warn(warning);
      },
    },
  },
});
