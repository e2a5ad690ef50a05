/**
 * The dashboard page: the tenant's documents and protocols; for the chosen protocol its flow
 * as a graph with each step's figures, the comparison of two versions with its verdict, the
 * recommendations (statement, JSON Patch, Apply), and the cost per day. Everything is read
 * through the public API with the key the person entered.
 */
import { ApiError, api, enc, forgetKey, type Json, saveKey, storedKey } from "./api.ts";
import { barsSvg, flowSvg } from "./charts.ts";
import { dollars, h, millis, percent } from "./dom.ts";
import { type DocumentStep, flowGraph } from "./flow.ts";

interface DocumentEntry {
  name: string;
  version: number;
  protocols: Array<{ name: string; steps: DocumentStep[] }>;
}

interface Selection {
  document: DocumentEntry;
  protocol: string;
  /** The version whose figures are shown; undefined: every version. */
  version?: number;
}

const app = document.getElementById("app")!;
/** The protocol last chosen, chosen again when the page reloads its data (after an apply). */
let wanted: { document: string; protocol: string } | undefined;

function showError(where: HTMLElement, error: unknown): void {
  if (error instanceof ApiError && error.status === 401) {
    forgetKey();
    login("That API key was refused.");
    return;
  }
  const message =
    error instanceof ApiError
      ? `${error.code}: ${error.message}`
      : String((error as Error)?.message ?? error);
  where.replaceChildren(h("p", { class: "error", role: "alert" }, message));
}

function login(problem?: string): void {
  const input = h("input", {
    type: "password",
    name: "key",
    id: "api-key",
    autocomplete: "off",
    required: true,
    size: 40,
  });
  const form = h(
    "form",
    {
      id: "login",
      onsubmit: (event: Event) => {
        event.preventDefault();
        saveKey(input.value.trim());
        void start();
      },
    },
    h("h2", {}, "API key"),
    h(
      "p",
      { class: "muted" },
      "The dashboard reads the API with your key (sent as Authorization: Bearer). It is kept in this tab only.",
    ),
    problem && h("p", { class: "error", role: "alert" }, problem),
    h("label", { for: "api-key" }, "Key "),
    input,
    " ",
    h("button", { type: "submit" }, "Open"),
  );
  app.replaceChildren(h("section", {}, form));
  input.focus();
}

async function loadDocuments(): Promise<DocumentEntry[]> {
  const list = await api("documents");
  return Promise.all(
    (list.items as Json[]).map(async (item) => {
      const full = await api(`documents/${enc(item.name)}`);
      return {
        name: item.name as string,
        version: item.version as number,
        protocols: ((full.document?.protocols ?? []) as Json[]).map((p) => ({
          name: p.name as string,
          steps: (p.steps ?? []) as DocumentStep[],
        })),
      };
    }),
  );
}

async function start(): Promise<void> {
  if (!storedKey()) return login();
  app.replaceChildren(h("p", { class: "muted", style: "padding:20px" }, "Loading…"));
  let documents: DocumentEntry[];
  try {
    documents = await loadDocuments();
  } catch (error) {
    return showError(app, error);
  }
  const nav = h("nav", { "aria-label": "documents" });
  const content = h("div", { class: "content" });
  app.replaceChildren(h("main", {}, nav, content));
  const cost = h("section", { id: "cost" });
  const select = (selection: Selection) => {
    wanted = { document: selection.document.name, protocol: selection.protocol };
    for (const button of nav.querySelectorAll("button")) {
      const current =
        button.dataset.document === selection.document.name && button.dataset.protocol === selection.protocol;
      button.setAttribute("aria-current", String(current));
    }
    void showProtocol(content, cost, selection, select);
  };
  if (documents.length === 0) {
    nav.append(h("p", { class: "muted" }, "No documents yet: PUT /documents/{name} to add one."));
  }
  for (const doc of documents) {
    nav.append(
      h("div", { class: "doc" }, doc.name, h("span", { class: "muted" }, ` v${doc.version}`)),
      h(
        "ul",
        {},
        ...doc.protocols.map((p) =>
          h(
            "li",
            {},
            h(
              "button",
              {
                type: "button",
                "data-document": doc.name,
                "data-protocol": p.name,
                onclick: () => select({ document: doc, protocol: p.name }),
              },
              p.name,
            ),
          ),
        ),
      ),
    );
  }
  content.append(cost);
  void showCost(cost);
  const again = documents.find((d) => d.name === wanted?.document);
  if (again?.protocols.some((p) => p.name === wanted?.protocol))
    select({ document: again, protocol: wanted!.protocol });
  else {
    const first = documents.find((d) => d.protocols.length > 0);
    if (first) select({ document: first, protocol: first.protocols[0]!.name });
  }
}

async function showProtocol(
  content: HTMLElement,
  cost: HTMLElement,
  selection: Selection,
  reselect: (selection: Selection) => void,
): Promise<void> {
  const { document: doc, protocol } = selection;
  const base = `documents/${enc(doc.name)}/protocols/${enc(protocol)}`;
  const flow = h("section", { id: "flow" }, h("p", { class: "muted" }, "Loading…"));
  const comparison = h("section", { id: "comparison" });
  const recommendations = h("section", { id: "recommendations" });
  content.replaceChildren(flow, comparison, recommendations, cost);
  const versionQuery = selection.version === undefined ? "" : `?version=${selection.version}`;
  try {
    const [patterns, versions, latest] = await Promise.all([
      api(`${base}/patterns${versionQuery}`),
      api(`documents/${enc(doc.name)}/versions`),
      api(`documents/${enc(doc.name)}`),
    ]);
    const sourceProtocols = ((selection.version === undefined
      ? latest.document
      : (await api(`documents/${enc(doc.name)}/versions/${selection.version}`)).document
    )?.protocols ?? []) as Json[];
    const source = sourceProtocols.find((p) => p.name === protocol);
    const versionNumbers = (versions.items as Json[]).map((v) => v.version as number);
    renderFlow(flow, selection, patterns, source ?? {}, versionNumbers, reselect);
    renderComparison(comparison, base, versionNumbers);
    void renderRecommendations(recommendations, base, selection, () => void start());
  } catch (error) {
    showError(flow, error);
  }
}

function renderFlow(
  section: HTMLElement,
  selection: Selection,
  patterns: Json,
  source: { steps?: DocumentStep[]; flow?: string },
  versions: number[],
  reselect: (selection: Selection) => void,
): void {
  const statistics = patterns.statistics;
  const picker = h(
    "select",
    {
      id: "figures-version",
      "aria-label": "figures of version",
      onchange: (event: Event) => {
        const value = (event.target as HTMLSelectElement).value;
        reselect({ ...selection, version: value === "" ? undefined : Number(value) });
      },
    },
    h("option", { value: "" }, "every version"),
    ...versions.map((v) => h("option", { value: v, selected: selection.version === v }, `version ${v}`)),
  );
  const graph = flowGraph({
    steps: source.steps ?? [],
    flow: source.flow,
    statistics: statistics?.steps ?? [],
    patterns: patterns.patterns ?? [],
  });
  const quality = statistics?.quality;
  section.replaceChildren(
    h("h2", {}, `${selection.document.name} / ${selection.protocol}`),
    h("p", {}, "Figures of ", picker, ` over ${patterns.window.days} days`),
    statistics
      ? h(
          "p",
          { id: "headline" },
          `${statistics.total} runs · completion ${percent(statistics.completionRate)} · success ${percent(quality?.successRate)} · p50 ${millis(statistics.duration?.p50)} · p95 ${millis(statistics.duration?.p95)} · cost per run ${dollars(statistics.cost?.costPerRun)}`,
        )
      : h("p", { class: "muted", id: "headline" }, "No analysed runs in this window yet."),
    h("div", { style: "overflow:auto" }, flowSvg(graph)),
    h(
      "p",
      { class: "muted" },
      "Nodes: the step's success rate and records, p50/p95 latency; red outline: a failure point. Edges: runs that took the transition (dashed: declared, not taken).",
    ),
  );
}

function renderComparison(section: HTMLElement, base: string, versions: number[]): void {
  section.replaceChildren(h("h2", {}, "Version comparison"));
  if (versions.length < 2) {
    section.append(h("p", { class: "muted" }, "One version only: nothing to compare yet."));
    return;
  }
  const options = (selected: number) =>
    versions.map((v) => h("option", { value: v, selected: v === selected }, `version ${v}`));
  const baseSelect = h(
    "select",
    { id: "compare-base", "aria-label": "base version" },
    ...options(versions.at(-2)!),
  );
  const candidateSelect = h(
    "select",
    { id: "compare-candidate", "aria-label": "candidate version" },
    ...options(versions.at(-1)!),
  );
  const result = h("div", { id: "compare-result" });
  const compare = async () => {
    result.replaceChildren(h("p", { class: "muted" }, "Comparing…"));
    try {
      const answer = await api(`${base}/compare?base=${baseSelect.value}&candidate=${candidateSelect.value}`);
      result.replaceChildren(
        h(
          "p",
          {},
          `Version ${answer.candidate} against ${answer.base}: `,
          h("span", { class: answer.verdict, id: "verdict" }, answer.verdict),
        ),
        h(
          "table",
          {},
          h(
            "tr",
            {},
            ...[
              "measure",
              "base",
              "candidate",
              "difference",
              "test",
              "p-value",
              "verdict",
              "more runs needed",
            ].map((title) => h("th", {}, title)),
          ),
          ...(answer.measures as Json[]).map((m) =>
            h(
              "tr",
              {},
              h("td", {}, m.measure),
              h("td", {}, fmt(m.base)),
              h("td", {}, fmt(m.candidate)),
              h("td", {}, fmt(m.difference)),
              h("td", {}, m.test),
              h("td", {}, m.pValue === null ? "–" : Number(m.pValue).toPrecision(2)),
              h("td", { class: m.verdict }, m.verdict),
              h("td", {}, m.moreRunsNeeded ?? "–"),
            ),
          ),
        ),
      );
    } catch (error) {
      showError(result, error);
    }
  };
  baseSelect.addEventListener("change", () => void compare());
  candidateSelect.addEventListener("change", () => void compare());
  section.append(h("p", {}, "Base ", baseSelect, " candidate ", candidateSelect), result);
  void compare();
}

const fmt = (value: number | null) => (value === null ? "–" : String(Math.round(value * 10_000) / 10_000));

async function renderRecommendations(
  section: HTMLElement,
  base: string,
  selection: Selection,
  applied: () => void,
): Promise<void> {
  section.replaceChildren(h("h2", {}, "Recommendations"));
  try {
    const versionQuery = selection.version === undefined ? "" : `?version=${selection.version}`;
    const answer = await api(`${base}/recommendations${versionQuery}`);
    const items = answer.recommendations as Json[];
    if (items.length === 0)
      section.append(h("p", { class: "muted" }, "No recommendation for these figures."));
    for (const item of items) {
      const status = h("p", { class: "apply-status", role: "status" });
      const apply = h(
        "button",
        {
          type: "button",
          class: "apply",
          disabled: item.patch === null,
          onclick: async () => {
            apply.disabled = true;
            status.textContent = "Applying…";
            try {
              const result = await api(`${base}/recommendations/${enc(item.id)}/apply`, {
                method: "POST",
                body: item.version === null ? {} : { version: item.version },
              });
              status.textContent = `Applied: version ${result.version} of ${result.name} (${(result.changes as string[]).join("; ")})`;
              setTimeout(applied, 2000);
            } catch (error) {
              apply.disabled = false;
              showError(status, error);
            }
          },
        },
        item.patch === null ? "Needs a person" : `Apply as version ${selection.document.version + 1}`,
      );
      section.append(
        h(
          "div",
          { class: "recommendation", "data-id": item.id },
          h("p", {}, h("strong", {}, item.kind), item.step ? ` (step ${item.step}) ` : " ", item.statement),
          item.message !== item.statement && h("p", { class: "muted" }, item.message),
          item.patch && h("pre", { class: "patch" }, JSON.stringify(item.patch, null, 2)),
          apply,
          status,
        ),
      );
    }
  } catch (error) {
    showError(section, error);
  }
}

async function showCost(section: HTMLElement): Promise<void> {
  section.replaceChildren(h("h2", {}, "Cost per day (all protocols, last 30 days)"));
  try {
    const usage = await api("usage?groupBy=day");
    const items = usage.items as Json[];
    const byDay = new Map(items.map((i) => [String(i.group.day), i]));
    const priced = items.some((i) => i.cost !== null);
    // Every day of the period, a day without runs as an empty bar, so the axis is time.
    const days = daysBetween(usage.from, usage.to).map((day) => {
      const i = byDay.get(day);
      if (!i) return { day, value: 0, label: "no runs" };
      return {
        day,
        value: priced ? (i.cost ?? 0) : i.promptTokens + i.completionTokens,
        label: `${dollars(i.cost)}, ${i.runs} runs, ${i.promptTokens + i.completionTokens} tokens`,
      };
    });
    section.append(
      h(
        "p",
        { id: "cost-total" },
        `Total ${dollars(usage.total.cost)} · ${usage.total.promptTokens + usage.total.completionTokens} tokens`,
      ),
      barsSvg(days, priced ? "US$" : "tokens"),
    );
  } catch (error) {
    showError(section, error);
  }
}

/** The UTC days from `from` to `to` (YYYY-MM-DD), both included. */
function daysBetween(from: string, to: string): string[] {
  const days: string[] = [];
  const last = Date.parse(`${to}T00:00:00Z`);
  for (let t = Date.parse(`${from}T00:00:00Z`); t <= last && days.length < 400; t += 86_400_000) {
    days.push(new Date(t).toISOString().slice(0, 10));
  }
  return days;
}

void start();
