// Compiles devnet/contracts/*.sol with solc-js (standard JSON) into devnet/build/<Contract>.json
// ({contractName, abi, bytecode}). The build is cached by a hash of the sources, the compiler
// version and the settings, so a second run costs a node start-up and no compilation.
import { createHash } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, writeFileSync, existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const contractsDir = join(here, "contracts");
const buildDir = join(here, "build");
const manifestPath = join(buildDir, "manifest.json");

// Cancun runs on every anvil hardfork the devnets use and keeps the bytecode reproducible
// whatever the compiler's newest default is.
const settings = {
  optimizer: { enabled: true, runs: 200 },
  evmVersion: "cancun",
  outputSelection: { "*": { "*": ["abi", "evm.bytecode.object"] } },
};

const require = createRequire(import.meta.url);
const solcVersion = require("solc/package.json").version;

function readSources() {
  const sources = {};
  for (const file of readdirSync(contractsDir).filter((f) => f.endsWith(".sol")).sort()) {
    sources[file] = { content: readFileSync(join(contractsDir, file), "utf8") };
  }
  return sources;
}

function fingerprint(sources) {
  const hash = createHash("sha256");
  hash.update(JSON.stringify({ solcVersion, settings }));
  for (const [file, { content }] of Object.entries(sources)) {
    hash.update(`\0${file}\0${content}`);
  }
  return hash.digest("hex");
}

function upToDate(sourceHash) {
  if (!existsSync(manifestPath)) return false;
  const manifest = JSON.parse(readFileSync(manifestPath, "utf8"));
  return (
    manifest.sourceHash === sourceHash &&
    manifest.contracts.every((name) => existsSync(join(buildDir, `${name}.json`)))
  );
}

async function compile(sources) {
  // Loading the compiler takes about a second, so only a stale build pays for it.
  const solc = (await import("solc")).default;
  const output = JSON.parse(
    solc.compile(JSON.stringify({ language: "Solidity", sources, settings })),
  );
  const errors = (output.errors ?? []).filter((e) => e.severity === "error");
  for (const problem of output.errors ?? []) console.error(problem.formattedMessage);
  if (errors.length > 0) throw new Error(`solc reported ${errors.length} error(s)`);
  const artifacts = [];
  for (const [file, contracts] of Object.entries(output.contracts)) {
    for (const [contractName, out] of Object.entries(contracts)) {
      artifacts.push({
        contractName,
        sourceName: file,
        abi: out.abi,
        bytecode: `0x${out.evm.bytecode.object}`,
      });
    }
  }
  return artifacts;
}

const sources = readSources();
const sourceHash = fingerprint(sources);
if (upToDate(sourceHash)) {
  console.log(`contracts up to date (${sourceHash.slice(0, 12)})`);
} else {
  const artifacts = await compile(sources);
  mkdirSync(buildDir, { recursive: true });
  for (const artifact of artifacts) {
    writeFileSync(join(buildDir, `${artifact.contractName}.json`), JSON.stringify(artifact, null, 2));
  }
  const names = artifacts.map((a) => a.contractName).sort();
  writeFileSync(
    manifestPath,
    JSON.stringify({ sourceHash, solcVersion, settings, contracts: names }, null, 2),
  );
  console.log(`compiled ${names.join(", ")} with solc ${solcVersion} (${sourceHash.slice(0, 12)})`);
}
