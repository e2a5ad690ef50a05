/**
 * The architecture's rules, checked by `npm run lint` (depcruise): no import cycle between
 * files (type-only imports included), and the folders of lib/ in one direction only, from
 * the language up to the wiring (see ../shared/DESIGN.md, "Rules of the architecture"):
 *
 *   errors.ts, config.ts ← mova ← core ← engine ← analysis ← adapters ← services ← http ← wiring
 *                                                                           cli ←┘(below wiring)
 *
 * A folder may import only folders to its left, so no two folders import each other.
 */
const LAYERS = ["mova", "core", "engine", "analysis", "adapters", "services", "http", "wiring"];

const layerRules = LAYERS.map((layer, index) => {
  const above = [...LAYERS.slice(index + 1), "cli"];
  return {
    name: `layer-${layer}`,
    comment: `lib/${layer} may import only the folders below it: ${LAYERS.slice(0, index).join(", ") || "none"}`,
    severity: "error",
    from: { path: `^lib/${layer}/` },
    to: { path: `^lib/(${above.join("|")})/` },
  };
});

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
      name: "cli-not-http",
      comment:
        "the command line runs the engine and reads history, never the HTTP layer or the functions' wiring",
      severity: "error",
      from: { path: "^lib/cli/" },
      to: { path: "^lib/(http|wiring)/" },
    },
    {
      name: "lib-not-entries",
      comment: "lib/ never imports the entries built on it",
      severity: "error",
      from: { path: "^lib/" },
      to: { path: "^(functions|infra|bench|scripts|test|bin)/" },
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
