// Tutorial: short lessons of requests written as Qdrant's console writes them, each run
// here with its answer shown under it, or opened in the Console to change and send. Every
// lesson starts from its own fresh collection, so any lesson runs on its own and again.
import { send } from "./api.js";
import { jsonBody, parseRequestText, shownAnswer } from "./console.js";
import { h } from "./ui.js";

const CITIES = [
  [1, [0.05, 0.61, 0.76, 0.74], "Berlin", "Germany", 3.7],
  [2, [0.19, 0.81, 0.75, 0.11], "London", "UK", 8.9],
  [3, [0.36, 0.55, 0.47, 0.94], "Moscow", "Russia", 12.6],
  [4, [0.18, 0.01, 0.85, 0.8], "New York", "USA", 8.3],
  [5, [0.24, 0.18, 0.22, 0.44], "Beijing", "China", 21.5],
  [6, [0.35, 0.08, 0.11, 0.44], "Mumbai", "India", 20.4],
];

const cityPoints = CITIES.map(([id, vector, city, country, population]) =>
  `    { "id": ${id}, "vector": ${JSON.stringify(vector)}, "payload": { "city": "${city}", "country": "${country}", "population": ${population} } }`,
).join(",\n");

// The steps every lesson on the cities starts with.
const CITIES_SETUP = [
  ["Start clean: remove what an earlier run left (the first time this answers `false`).",
    "DELETE collections/tutorial"],
  ["Create a collection of 4-dimensional vectors compared by dot product.",
    'PUT collections/tutorial\n{\n  "vectors": { "size": 4, "distance": "Dot" }\n}'],
  ["Store six points: an id, a vector and a JSON payload each. `wait=true` answers once they are searchable.",
    `PUT collections/tutorial/points?wait=true\n{\n  "points": [\n${cityPoints}\n  ]\n}`],
];

const QUERY = "[0.2, 0.1, 0.9, 0.7]";

export const LESSONS = [
  {
    id: "quickstart",
    title: "Quickstart",
    steps: [
      ...CITIES_SETUP,
      ["Find the three points nearest to a vector, with their payloads.",
        `POST collections/tutorial/points/query\n{\n  "query": ${QUERY},\n  "limit": 3,\n  "with_payload": true\n}`],
      ["The same search, only among points whose `city` is London.",
        `POST collections/tutorial/points/query\n{\n  "query": ${QUERY},\n  "filter": { "must": [ { "key": "city", "match": { "value": "London" } } ] },\n  "with_payload": true\n}`],
      ["Read points by id, vectors included.",
        'POST collections/tutorial/points\n{\n  "ids": [1, 2],\n  "with_vector": true\n}'],
      ["Count the points.", 'POST collections/tutorial/points/count\n{\n  "exact": true\n}'],
    ],
  },
  {
    id: "filtering",
    title: "Filtering",
    steps: [
      ...CITIES_SETUP,
      ["Index the fields you filter on: a keyword index for `country`, a float index for `population`.",
        'PUT collections/tutorial/index?wait=true\n{\n  "field_name": "country",\n  "field_schema": "keyword"\n}'],
      ["", 'PUT collections/tutorial/index?wait=true\n{\n  "field_name": "population",\n  "field_schema": "float"\n}'],
      ["A range: cities of more than 10 million.",
        'POST collections/tutorial/points/scroll\n{\n  "filter": { "must": [ { "key": "population", "range": { "gt": 10 } } ] },\n  "with_payload": true\n}'],
      ["Any of several values, and a condition that must not hold.",
        'POST collections/tutorial/points/scroll\n{\n  "filter": {\n    "must": [ { "key": "country", "match": { "any": ["Germany", "UK", "USA"] } } ],\n    "must_not": [ { "key": "city", "match": { "value": "London" } } ]\n  },\n  "with_payload": true\n}'],
      ["`should`: at least one of the conditions.",
        'POST collections/tutorial/points/count\n{\n  "filter": { "should": [\n    { "key": "country", "match": { "value": "India" } },\n    { "key": "population", "range": { "lt": 5 } }\n  ] },\n  "exact": true\n}'],
      ["How many points carry each value of an indexed field.",
        'POST collections/tutorial/facet\n{\n  "key": "country",\n  "exact": true\n}'],
    ],
  },
  {
    id: "recommend",
    title: "Recommend, discover, group",
    steps: [
      ...CITIES_SETUP,
      ["Points like point 1 and unlike point 5.",
        'POST collections/tutorial/points/query\n{\n  "query": { "recommend": { "positive": [1], "negative": [5] } },\n  "limit": 3\n}'],
      ["Near a target, on the side of point 1 rather than point 6.",
        `POST collections/tutorial/points/query\n{\n  "query": { "discover": {\n    "target": ${QUERY},\n    "context": [ { "positive": 1, "negative": 6 } ]\n  } },\n  "limit": 3\n}`],
      ["The best point of each country.",
        `POST collections/tutorial/points/query/groups\n{\n  "query": ${QUERY},\n  "group_by": "country",\n  "limit": 3,\n  "group_size": 1\n}`],
    ],
  },
  {
    id: "hybrid",
    title: "Sparse and hybrid search",
    steps: [
      ["Start clean.", "DELETE collections/tutorial_hybrid"],
      ["A collection with a named dense vector and a sparse one (keyword weights, as BM25 or SPLADE give them).",
        'PUT collections/tutorial_hybrid\n{\n  "vectors": { "dense": { "size": 4, "distance": "Cosine" } },\n  "sparse_vectors": { "keywords": {} }\n}'],
      ["Each point carries both.",
        'PUT collections/tutorial_hybrid/points?wait=true\n{\n  "points": [\n    { "id": 1, "vector": { "dense": [0.05, 0.61, 0.76, 0.74], "keywords": { "indices": [1, 7], "values": [0.9, 0.4] } }, "payload": { "text": "red apple" } },\n    { "id": 2, "vector": { "dense": [0.19, 0.81, 0.75, 0.11], "keywords": { "indices": [3, 7], "values": [0.8, 0.3] } }, "payload": { "text": "green pear" } },\n    { "id": 3, "vector": { "dense": [0.36, 0.55, 0.47, 0.94], "keywords": { "indices": [1, 3], "values": [0.2, 0.7] } }, "payload": { "text": "red pear" } }\n  ]\n}'],
      ["Search the sparse vectors: the dot product over the indices both have.",
        'POST collections/tutorial_hybrid/points/query\n{\n  "query": { "indices": [1], "values": [1.0] },\n  "using": "keywords",\n  "with_payload": true\n}'],
      ["Hybrid: candidates from both, fused by rank (RRF).",
        'POST collections/tutorial_hybrid/points/query\n{\n  "prefetch": [\n    { "query": [0.2, 0.1, 0.9, 0.7], "using": "dense", "limit": 10 },\n    { "query": { "indices": [1, 3], "values": [0.5, 0.5] }, "using": "keywords", "limit": 10 }\n  ],\n  "query": { "fusion": "rrf" },\n  "with_payload": true\n}'],
    ],
  },
  {
    id: "multivector",
    title: "Multivectors",
    steps: [
      ["Start clean.", "DELETE collections/tutorial_colbert"],
      ["Several vectors per point (ColBERT-style token vectors), scored by MaxSim.",
        'PUT collections/tutorial_colbert\n{\n  "vectors": { "size": 3, "distance": "Cosine", "multivector_config": { "comparator": "max_sim" } }\n}'],
      ["", 'PUT collections/tutorial_colbert/points?wait=true\n{\n  "points": [\n    { "id": 1, "vector": [[0.1, 0.9, 0.2], [0.8, 0.1, 0.3]] },\n    { "id": 2, "vector": [[0.9, 0.1, 0.1], [0.2, 0.2, 0.9], [0.5, 0.5, 0.1]] }\n  ]\n}'],
      ["A query of several vectors: each finds its best match in a point, the sum is the score.",
        'POST collections/tutorial_colbert/points/query\n{\n  "query": [[0.1, 0.8, 0.3], [0.9, 0.2, 0.1]]\n}'],
    ],
  },
  {
    id: "operations",
    title: "Aliases and snapshots",
    steps: [
      ...CITIES_SETUP,
      ["An alias: a second name that can be switched to another collection at once.",
        'POST collections/aliases\n{\n  "actions": [ { "create_alias": { "collection_name": "tutorial", "alias_name": "tutorial_live" } } ]\n}'],
      ["Requests take the alias wherever they take a collection name.",
        `POST collections/tutorial_live/points/query\n{\n  "query": ${QUERY},\n  "limit": 2\n}`],
      ["A snapshot: the whole collection in one file, to download or restore.",
        "POST collections/tutorial/snapshots?wait=true"],
      ["", "GET collections/tutorial/snapshots"],
      ["Remove the alias.",
        'POST collections/aliases\n{\n  "actions": [ { "delete_alias": { "alias_name": "tutorial_live" } } ]\n}'],
    ],
  },
];

async function runStep(text, status, output) {
  const request = parseRequestText(text);
  if (!request) {
    status.textContent = "Not a request: a `METHOD path` line first, then the JSON body";
    return false;
  }
  const body = request.body ? jsonBody(request.body, status) : undefined;
  if (body === null) return false;
  status.textContent = "…";
  try {
    const response = await send(request.method, request.path, body);
    status.textContent = `${response.status} ${response.statusText}`;
    status.dataset.status = String(response.status);
    output.textContent = shownAnswer(await response.text());
    output.hidden = false;
    return response.ok;
  } catch (err) {
    status.textContent = `Request failed: ${err.message}`;
    return false;
  }
}

// Explanations mark code with backticks, as the docs do.
function prose(text) {
  return text.split("`").map((part, i) => (i % 2 ? h("code", {}, part) : part));
}

function step(index, [explain, request]) {
  const text = h("textarea", { class: "tutorial-request", rows: String(request.split("\n").length), spellcheck: "false" });
  text.value = request;
  const status = h("span", { class: "muted tutorial-status" });
  const output = h("pre", { class: "tutorial-output", hidden: true });
  const run = () => runStep(text.value, status, output);
  const node = h("li", { class: "tutorial-step" },
    explain ? h("p", {}, prose(explain)) : null,
    text,
    h("div", { class: "row" },
      h("button", { class: "primary", onclick: run }, "Run"),
      h("button", { onclick: () => { location.hash = `#/console?body=${encodeURIComponent(text.value)}`; } }, "Open in console"),
      status),
    output);
  node.dataset.index = String(index);
  return { node, run };
}

export async function render(root, route) {
  const lesson = LESSONS.find((l) => l.id === route.args[0]) ?? LESSONS[0];
  const steps = lesson.steps.map((s, i) => step(i, s));
  const runAll = async () => {
    for (const s of steps) {
      if (!(await s.run())) break;
    }
  };
  root.append(
    h("h2", {}, "Tutorial"),
    h("div", { class: "tutorial-lessons" }, LESSONS.map((l) =>
      h("a", { href: `#/tutorial/${l.id}`, class: l === lesson ? "active" : "" }, l.title))),
    h("h3", {}, lesson.title),
    h("p", { class: "muted" }, "Each step is a request as the Console takes it: change it if you like, then Run. Run all runs the lesson from the start, stopping at the first refusal."),
    h("div", { class: "row" }, h("button", { id: "tutorial-run-all", onclick: runAll }, "Run all")),
    h("ol", { class: "tutorial-steps" }, steps.map((s) => s.node)),
  );
}
