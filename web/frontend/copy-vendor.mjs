// Copy the installed uPlot distribution files into web/static/vendor/ (served by the app; no CDN).
import { copyFileSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const target = join(here, "..", "static", "vendor", "uplot");
const files = ["dist/uPlot.iife.min.js", "dist/uPlot.min.css", "LICENSE"];

mkdirSync(target, { recursive: true });
for (const file of files) {
  const name = file.split("/").pop();
  copyFileSync(join(here, "node_modules", "uplot", file), join(target, name));
  console.log(`copied uplot/${file} -> web/static/vendor/uplot/${name}`);
}
