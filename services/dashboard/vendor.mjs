// Copies the pinned front-end libraries from node_modules into the dashboard's static
// files, so the service serves them itself (no CDN). Run `npm ci && npm run vendor`
// after changing a version in package.json; the copied files are committed.
import { copyFileSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const target = join(here, "src", "stablegate_dashboard", "static", "vendor");
const files = {
  "bootstrap/dist/css/bootstrap.min.css": "bootstrap.min.css",
  "bootstrap/dist/js/bootstrap.bundle.min.js": "bootstrap.bundle.min.js",
  "chart.js/dist/chart.umd.min.js": "chart.umd.min.js",
  "bootstrap/LICENSE": "LICENSE.bootstrap",
  "chart.js/LICENSE.md": "LICENSE.chartjs",
};
mkdirSync(target, { recursive: true });
for (const [source, name] of Object.entries(files)) {
  copyFileSync(join(here, "node_modules", source), join(target, name));
  console.log(`vendored ${source} -> static/vendor/${name}`);
}
