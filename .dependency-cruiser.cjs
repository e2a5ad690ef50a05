/**
 * The architecture's rules, checked by `npm run lint` (depcruise): no import cycle between
 * files (type-only imports included), and lib/ in one direction only, from the language up
 * to the wiring (see ../shared/DESIGN.md, "Rules of the architecture"):
 *
 *   errors.ts, config.ts ← mova ← core ← analysis ← ports.ts ← engine ← adapters | services ← http ← wiring
 *                                                                                  cli ←┘ (beside http)
 *
 * Each layer may import only the layers to its left; adapters and services sit side by side
 * and never import each other (the services know the ports, the wiring chooses the adapters),
 * so no two folders import each other.
 */
const LAYERS = [
  ["mova"],
  ["core"],
  ["analysis"],
  ["ports.ts"],
  ["engine"],
  ["adapters", "services"],
  ["http", "cli"],
  ["wiring"],
];

const pathOf = (name) => (name.endsWith(".ts") ? `lib/${name.replace(".", "\\.")}$` : `lib/${name}/`);

const layerRules = LAYERS.flatMap((layer, index) =>
  layer.flatMap((name) => {
    const forbidden = [...LAYERS.slice(index + 1).flat(), ...layer.filter((other) => other !== name)];
    if (forbidden.length === 0) return [];
    return {
      name: `layer-${name}`,
      comment: `lib/${name} may import only: ${LAYERS.slice(0, index).flat().join(", ") || "errors.ts and config.ts"}`,
      severity: "error",
      from: { path: `^${pathOf(name)}` },
      to: { path: `^(${forbidden.map(pathOf).join("|")})` },
    };
  }),
);

module.exports = {
  forbidden: [
    {
      name: "no-circular",
      comment: "an import cycle between files",
      severity: "error",
      from: {},
      to: { circular: true },
    },
    {
      name: "leaf-modules",
      comment:
        "lib/errors.ts and lib/config.ts are imported by every layer: config.ts imports only errors.ts, errors.ts nothing",
      severity: "error",
      from: { path: "^lib/(errors|config)\\.ts$" },
      to: { path: "^lib/", pathNot: "^lib/errors\\.ts$" },
    },
    ...layerRules,
    {
      name: "lib-not-entries",
      comment: "lib/ never imports the entries built on it",
      severity: "error",
      from: { path: "^lib/" },
      to: { path: "^(functions|infra|bench|scripts|test|bin|dashboard)/" },
    },
    {
      name: "dashboard-is-browser-code",
      comment:
        "dashboard/ is the page's script, bundled for the browser: it reads the API over HTTP and imports only itself and browser-safe packages",
      severity: "error",
      from: { path: "^dashboard/" },
      to: { path: "^(lib|functions|infra|bench|scripts|test|bin)/" },
    },
    {
      name: "dashboard-no-node",
      comment: "dashboard/ runs in the browser: no Node built-in",
      severity: "error",
      from: { path: "^dashboard/" },
      to: { dependencyTypes: ["core"] },
    },
    {
      name: "functions-are-thin",
      comment: "a function entry wires: it imports its wiring module, the config and the handler factories",
      severity: "error",
      from: { path: "^functions/" },
      to: { path: "^lib/(mova|core|engine|analysis|adapters|http/(?!handler))" },
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    exclude: { path: "^(node_modules|dist|\\.serverless|coverage)" },
    // TypeScript 7 offers dependency-cruiser no compiler API yet: swc parses the sources, and its
    // parse keeps type-only imports, so they count for the rules and the cycles too.
    parser: "swc",
    tsConfig: { fileName: "tsconfig.json" },
    moduleSystems: ["es6"],
  },
};
