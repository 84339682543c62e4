// Imprint console: one page over the public HTTP API (the same /v1 routes the OpenAI SDK calls).
// No framework and no build step; every element is built with textContent (no HTML from data), every API
// error is shown with its message, and the key lives in sessionStorage (asked once per browser tab).
"use strict";

const I18N = {
  en: {
    "tab.data": "Data", "tab.jobs": "Jobs", "tab.adapters": "Adapters", "tab.kb": "Knowledge bases",
    "tab.playground": "Playground", "key.change": "API key", "key.title": "API key",
    "key.help": "Enter an API key of this server. It is kept for this browser tab only.",
    "key.placeholder": "API key", "key.use": "Use key", "key.wrong": "Wrong API key — the server said: ",
    "key.needed": "This server needs an API key.",
    "data.title": "Training data", "data.file": "Chat JSONL file", "data.model": "Base model",
    "data.model.ph": "server default", "data.upload": "Check and upload", "data.files": "Uploaded files",
    "data.filename": "file", "data.bytes": "bytes", "data.purpose": "purpose", "data.created": "created",
    "data.pick": "Choose a JSONL file first.", "data.checking": "Checking with the base model's tokenizer…",
    "data.bad": "Not uploaded: {n} problem(s) must be fixed first (see the lines below).",
    "data.uploaded": "Uploaded as {id}.", "data.issues": "Problems", "data.line": "line",
    "data.field": "field", "data.severity": "severity", "data.message": "message", "data.fix": "fix",
    "data.stats": "Token statistics", "data.preview": "Preview: the first examples as the model sees them",
    "data.asModel": "line {line} as the model sees it", "data.trainedLegend": "trained (carries loss)",
    "data.promptLegend": "not trained (prompt)", "data.tokens": "tokens",
    "data.examples": "examples", "data.knowledge": "knowledge records", "data.tmin": "tokens min / mean / max",
    "data.ttotal": "tokens total", "data.ttrained": "trained tokens", "data.limit": "token limit",
    "data.noIssues": "No problems found.", "data.hist": "examples per token length",
    "jobs.title": "Fine-tuning jobs", "jobs.model": "Base model", "jobs.training": "Training file",
    "jobs.validation": "Validation", "jobs.auto": "automatic split", "jobs.suffix": "Suffix",
    "jobs.kb": "Knowledge base", "jobs.none": "none", "jobs.reading": "Reading examples",
    "jobs.extra": "More Imprint options (JSON)", "jobs.create": "Start job", "jobs.status": "status",
    "jobs.ftmodel": "fine-tuned model", "jobs.job": "Job", "jobs.cancel": "Cancel", "jobs.events": "Events",
    "jobs.loss": "Loss", "jobs.acc": "Token accuracy", "jobs.step": "step", "jobs.created": "Created {id}.",
    "jobs.badJson": "More Imprint options: not valid JSON: ", "jobs.number": "{f} must be a number or auto",
    "jobs.summary": "hyperparameters {hp} · trained tokens {tok} · fine-tuned model {ft}",
    "ad.title": "Adapters", "ad.served": "Served models", "ad.stale": "Staleness report",
    "ad.name": "Adapter", "ad.check": "Check", "ad.version": "version", "ad.promoted": "promoted",
    "ad.scores": "gate scores", "ad.promote": "Promote", "ad.rollback": "Roll back",
    "ad.unavailable": "The adapter registry is not available on this server: ",
    "ad.done": "Done: ", "ad.checked": "checked", "ad.consistent": "consistent", "ad.unclear": "unclear",
    "ad.staleN": "stale", "ad.question": "question", "ad.trained": "trained answer",
    "ad.document": "document answer", "ad.source": "source", "ad.history": "promotion history",
    "ad.servedV": "(served v{v})", "ad.job": "job", "data.counts": "{n} tokens ({k} trained)",
    "kb.title": "Knowledge bases", "kb.reindex": "Re-index", "kb.query": "search…", "kb.search": "Search",
    "kb.docs": "Documents", "kb.chunks": "chunks", "kb.modified": "modified", "kb.none": "No knowledge base is reachable with this key.",
    "kb.reindexed": "Re-indexed: ", "kb.noHits": "No hits.",
    "pg.title": "Playground: fine-tune or RAG?", "pg.question": "Ask a question…",
    "pg.adapter": "Adapter model", "pg.ask": "Ask all four", "pg.base": "Base model",
    "pg.adapterCol": "Adapter", "pg.routed": "Routed (imprint)", "pg.route": "route", "pg.reason": "reason",
    "pg.prompt": "prompt tokens", "pg.retrieved": "retrieved", "pg.citations": "citations",
    "pg.waiting": "…", "pg.empty": "Type a question first.",
  },
  zh: {
    "tab.data": "数据", "tab.jobs": "训练任务", "tab.adapters": "适配器", "tab.kb": "知识库",
    "tab.playground": "试答", "key.change": "API 密钥", "key.title": "API 密钥",
    "key.help": "请输入本服务的 API 密钥，只保存在当前浏览器标签页中。",
    "key.placeholder": "API 密钥", "key.use": "使用密钥", "key.wrong": "API 密钥错误 — 服务器返回：",
    "key.needed": "此服务需要 API 密钥。",
    "data.title": "训练数据", "data.file": "对话 JSONL 文件", "data.model": "基座模型",
    "data.model.ph": "服务器默认", "data.upload": "检查并上传", "data.files": "已上传文件",
    "data.filename": "文件", "data.bytes": "字节", "data.purpose": "用途", "data.created": "创建时间",
    "data.pick": "请先选择一个 JSONL 文件。", "data.checking": "正在用基座模型的分词器检查…",
    "data.bad": "未上传：需要先修复 {n} 个问题（见下方行号）。",
    "data.uploaded": "已上传，文件 ID {id}。", "data.issues": "问题", "data.line": "行",
    "data.field": "字段", "data.severity": "级别", "data.message": "说明", "data.fix": "修改方法",
    "data.stats": "词元统计", "data.preview": "预览：模型看到的前几个样本",
    "data.asModel": "第 {line} 行（模型看到的样子）", "data.trainedLegend": "参与训练（计算损失）",
    "data.promptLegend": "不参与训练（提示部分）", "data.tokens": "词元",
    "data.examples": "样本数", "data.knowledge": "知识记录", "data.tmin": "词元 最少 / 平均 / 最多",
    "data.ttotal": "词元总数", "data.ttrained": "训练词元", "data.limit": "每样本词元上限",
    "data.noIssues": "没有发现问题。", "data.hist": "按词元长度的样本数",
    "jobs.title": "微调任务", "jobs.model": "基座模型", "jobs.training": "训练文件",
    "jobs.validation": "验证集", "jobs.auto": "自动划分", "jobs.suffix": "后缀",
    "jobs.kb": "知识库", "jobs.none": "无", "jobs.reading": "阅读样本数",
    "jobs.extra": "更多 Imprint 选项（JSON）", "jobs.create": "开始训练", "jobs.status": "状态",
    "jobs.ftmodel": "微调后的模型", "jobs.job": "任务", "jobs.cancel": "取消", "jobs.events": "事件",
    "jobs.loss": "损失", "jobs.acc": "词元准确率", "jobs.step": "步", "jobs.created": "已创建 {id}。",
    "jobs.badJson": "更多 Imprint 选项不是合法 JSON：", "jobs.number": "{f} 必须是数字或 auto",
    "jobs.summary": "超参数 {hp} · 训练词元 {tok} · 微调模型 {ft}",
    "ad.title": "适配器", "ad.served": "正在服务的模型", "ad.stale": "过时报告",
    "ad.name": "适配器", "ad.check": "检查", "ad.version": "版本", "ad.promoted": "已上线",
    "ad.scores": "评测分数", "ad.promote": "上线", "ad.rollback": "回滚",
    "ad.unavailable": "此服务器还没有适配器版本管理：",
    "ad.done": "完成：", "ad.checked": "已检查", "ad.consistent": "一致", "ad.unclear": "不确定",
    "ad.staleN": "过时", "ad.question": "问题", "ad.trained": "训练时的答案",
    "ad.document": "文档中的答案", "ad.source": "来源", "ad.history": "上线记录",
    "ad.servedV": "（正在服务 v{v}）", "ad.job": "任务", "data.counts": "{n} 个词元（{k} 个参与训练）",
    "kb.title": "知识库", "kb.reindex": "重新索引", "kb.query": "搜索…", "kb.search": "搜索",
    "kb.docs": "文档", "kb.chunks": "分块", "kb.modified": "修改时间", "kb.none": "此密钥无法访问任何知识库。",
    "kb.reindexed": "已重新索引：", "kb.noHits": "没有结果。",
    "pg.title": "试答：微调还是 RAG？", "pg.question": "输入一个问题…",
    "pg.adapter": "适配器模型", "pg.ask": "四种方式一起回答", "pg.base": "基座模型",
    "pg.adapterCol": "适配器", "pg.routed": "路由（imprint）", "pg.route": "路线", "pg.reason": "原因",
    "pg.prompt": "提示词元", "pg.retrieved": "检索", "pg.citations": "引用",
    "pg.waiting": "…", "pg.empty": "请先输入问题。",
  },
};

let lang = localStorage.getItem("imprint.lang") || (navigator.language.startsWith("zh") ? "zh" : "en");
const $ = (sel) => document.querySelector(sel);
const state = { models: [], files: [], kbs: [], job: null, timer: null, report: null };

function t(key, vars = {}) {
  const s = (I18N[lang] && I18N[lang][key]) || I18N.en[key] || key;
  return s.replace(/\{(\w+)\}/g, (_, k) => String(vars[k] ?? ""));
}

function applyLang() {
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  document.querySelectorAll("[data-i18n]").forEach((e) => { e.textContent = t(e.dataset.i18n); });
  document.querySelectorAll("[data-i18n-ph]").forEach((e) => { e.placeholder = t(e.dataset.i18nPh); });
  $("#lang-toggle").textContent = lang === "zh" ? "English" : "中文";
}

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k === "dataset") Object.assign(e.dataset, v);
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (v !== null && v !== undefined) e.setAttribute(k, v);
  }
  for (const c of children.flat()) {
    if (c !== null && c !== undefined) e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

// ── the API ──────────────────────────────────────────────────────────────────────────────────────────
class ApiError extends Error {
  constructor(status, message, body) { super(message); this.status = status; this.body = body; }
}

async function api(path, { method = "GET", json, form } = {}) {
  const headers = {};
  const key = sessionStorage.getItem("imprint.key");
  if (key) headers.Authorization = "Bearer " + key;
  let body;
  if (json !== undefined) { headers["Content-Type"] = "application/json"; body = JSON.stringify(json); }
  if (form !== undefined) body = form;
  let resp;
  try {
    resp = await fetch(path, { method, headers, body });
  } catch (exc) {
    throw new ApiError(0, `${method} ${path}: the server cannot be reached (${exc.message})`);
  }
  const text = await resp.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (_) { data = null; }
  if (!resp.ok) {
    const msg = (data && data.error && data.error.message) || (data && data.detail) || text || resp.statusText;
    const err = new ApiError(resp.status, `${resp.status}: ${typeof msg === "string" ? msg : JSON.stringify(msg)}`, data);
    if (resp.status === 401) askKey(t("key.wrong") + err.message);
    throw err;
  }
  return data;
}

function showError(err) {
  const box = $("#error");
  box.textContent = err instanceof Error ? err.message : String(err);
  box.hidden = false;
}
function clearError() { $("#error").hidden = true; }

// Every handler runs through here, so an API error is always shown (never a blank page).
function guarded(fn) {
  return async (ev) => {
    if (ev && ev.preventDefault) ev.preventDefault();
    clearError();
    try { await fn(ev); } catch (err) { if (!(err instanceof ApiError && err.status === 401)) showError(err); }
  };
}

// ── key ──────────────────────────────────────────────────────────────────────────────────────────────
function askKey(message) {
  $("#key-panel").hidden = false;
  $("#app").hidden = true;
  $("#key-message").textContent = message || "";
  $("#api-key").focus();
}

async function start() {
  try {
    state.models = (await api("/v1/models")).data;
  } catch (err) {
    if (err.status === 401) {
      if (!sessionStorage.getItem("imprint.key")) askKey(t("key.needed"));
      return;
    }
    showError(err);
    return;
  }
  $("#key-panel").hidden = true;
  $("#app").hidden = false;
  showTab(location.hash.slice(1) || "data");
}

// ── tabs ─────────────────────────────────────────────────────────────────────────────────────────────
const LOADERS = { data: loadFiles, jobs: loadJobsTab, adapters: loadAdapters, kb: loadKbTab, playground: loadPlayground };

function showTab(name) {
  if (!LOADERS[name]) name = "data";
  document.querySelectorAll(".panel").forEach((p) => { p.hidden = p.id !== "panel-" + name; });
  document.querySelectorAll("#tabs button").forEach((b) => b.classList.toggle("active", b.dataset.tab === name));
  history.replaceState(null, "", "#" + name);
  // aria-busy while the tab loads: screen readers announce it, and a page that waits on the loaded tab
  // (a test, a user's script) has one attribute to wait for.
  const panel = $("#panel-" + name);
  panel.setAttribute("aria-busy", "true");
  guarded(LOADERS[name])().finally(() => panel.removeAttribute("aria-busy"));
}

function fmtTime(s) { return s ? new Date(s * 1000).toLocaleString() : ""; }

// ── Data ─────────────────────────────────────────────────────────────────────────────────────────────
async function loadFiles() {
  const data = (await api("/v1/files?purpose=fine-tune&limit=100")).data;
  state.files = data;
  const body = $("#files-table tbody");
  body.replaceChildren(...data.map((f) =>
    el("tr", {}, el("td", {}, el("code", {}, f.id)), el("td", {}, f.filename), el("td", {}, f.bytes),
      el("td", {}, f.purpose), el("td", {}, fmtTime(f.created_at)))));
  fillFileSelects();
}

function fillFileSelects() {
  const opts = (extra) => [...extra, ...state.files.map((f) => el("option", { value: f.id }, `${f.filename} (${f.id})`))];
  const tr = $("#job-training"), va = $("#job-validation");
  const keepT = tr.value, keepV = va.value;
  tr.replaceChildren(...opts([]));
  va.replaceChildren(...opts([el("option", { value: "" }, t("jobs.auto"))]));
  if (keepT) tr.value = keepT;
  if (keepV) va.value = keepV;
}

async function uploadData() {
  const input = $("#data-file");
  const file = input.files[0];
  const status = $("#data-status");
  if (!file) { status.textContent = t("data.pick"); return; }
  status.textContent = t("data.checking");
  const form = new FormData();
  form.append("file", file);
  form.append("preview", "3");
  const model = $("#data-model").value.trim();
  if (model) form.append("model", model);
  const report = await api("/v1/data/check", { method: "POST", form });
  renderReport(report);
  if (!report.ok) {
    status.textContent = t("data.bad", { n: report.stats.errors || report.issues.filter((i) => i.severity === "error").length });
    status.className = "status error";
    return;
  }
  const up = new FormData();
  up.append("file", file);
  up.append("purpose", "fine-tune");
  const uploaded = await api("/v1/files", { method: "POST", form: up });
  status.textContent = t("data.uploaded", { id: uploaded.id });
  status.className = "status ok";
  await loadFiles();
  $("#job-training").value = uploaded.id;
  if (!$("#job-model").value) $("#job-model").value = report.model;
}

function renderReport(r) {
  state.report = r;
  const issues = r.issues;
  const rows = issues.map((i) => el("tr", { class: "issue sev-" + i.severity, dataset: { line: i.line ?? "" } },
    el("td", {}, i.severity), el("td", { class: "line" }, i.line ?? "—"), el("td", {}, i.field),
    el("td", {}, i.message), el("td", {}, i.fix)));
  $("#data-issues").replaceChildren(
    el("h3", {}, t("data.issues")),
    issues.length ? el("table", { id: "issues-table" },
      el("thead", {}, el("tr", {}, ...["data.severity", "data.line", "data.field", "data.message", "data.fix"].map((k) => el("th", {}, t(k))))),
      el("tbody", {}, rows)) : el("p", { class: "ok" }, t("data.noIssues")));
  const s = r.stats, tok = s.tokens;
  const statRows = [[t("data.examples"), s.examples], [t("data.knowledge"), s.knowledge_records]];
  if (tok) {
    statRows.push([t("data.tmin"), `${tok.min} / ${tok.mean} / ${tok.max}`], [t("data.ttotal"), tok.total],
      [t("data.ttrained"), tok.trained], [t("data.limit"), tok.limit]);
  }
  $("#data-stats").replaceChildren(el("h3", {}, `${t("data.stats")} (${r.model})`),
    el("table", { id: "stats-table" }, el("tbody", {}, statRows.map(([k, v]) => el("tr", {}, el("th", {}, k), el("td", {}, v))))));
  if (tok && tok.histogram && window.Plotly) {
    Plotly.react("data-hist", [{ type: "bar", x: tok.histogram.map((b) => `${b.from}–${b.to}`), y: tok.histogram.map((b) => b.examples) }],
      { title: { text: t("data.hist"), font: { size: 12 } }, margin: { t: 28, r: 8, b: 40, l: 32 } }, { displayModeBar: false });
  }
  const legend = el("p", { class: "legend" }, el("span", { class: "seg trained" }, t("data.trainedLegend")),
    el("span", { class: "seg prompt" }, t("data.promptLegend")));
  const examples = r.preview.map((ex) => el("div", { class: "example", dataset: { line: ex.line } },
    el("h4", {}, `${t("data.asModel", { line: ex.line })} · ${t("data.counts", { n: ex.tokens, k: ex.trained_tokens })}`),
    el("pre", { class: "rendered" }, ex.segments.map((seg) => el("span", { class: "seg " + (seg.trained ? "trained" : "prompt") }, seg.text))),
    el("details", {}, el("summary", {}, t("data.tokens")),
      el("div", { class: "tokens" }, ex.segments.flatMap((seg) => seg.tokens.map((tk) => el("span", { class: "tok" + (seg.trained ? " trained" : "") }, JSON.stringify(tk).slice(1, -1))))))));
  $("#data-preview").replaceChildren(el("h3", {}, t("data.preview")), legend, ...examples);
}

// ── Jobs ─────────────────────────────────────────────────────────────────────────────────────────────
async function loadJobsTab() {
  await Promise.all([loadFiles(), loadKbs(), loadJobs()]);
  if (state.job) pollJob();
}

async function loadKbs() {
  try { state.kbs = (await api("/v1/kb")).data; } catch (err) { state.kbs = []; throw err; }
  const names = state.kbs.map((k) => k.id);
  for (const sel of [$("#job-kb"), $("#stale-kb"), $("#kb-select")]) {
    const keep = sel.value;
    const none = sel.id === "job-kb" ? [el("option", { value: "" }, t("jobs.none"))] : [];
    sel.replaceChildren(...none, ...names.map((n) => el("option", { value: n }, n)));
    if (keep && names.includes(keep)) sel.value = keep;
  }
}

async function loadJobs() {
  const jobs = (await api("/v1/fine_tuning/jobs?limit=50")).data;
  $("#jobs-table tbody").replaceChildren(...jobs.map((j) => el("tr", {
    class: "clickable" + (state.job === j.id ? " selected" : ""), dataset: { id: j.id }, onclick: () => selectJob(j.id),
  }, el("td", {}, el("code", {}, j.id)), el("td", {}, el("span", { class: "pill " + j.status }, j.status)),
  el("td", {}, j.model), el("td", {}, el("code", {}, j.fine_tuned_model || "")), el("td", {}, fmtTime(j.created_at)))));
}

function hyper(id, name, parse) {
  const raw = $(id).value.trim();
  if (!raw || raw === "auto") return "auto";
  const v = parse(raw);
  if (Number.isNaN(v)) throw new Error(t("jobs.number", { f: name }));
  return v;
}

async function createJob() {
  const hp = {
    batch_size: hyper("#job-batch", "batch_size", (v) => parseInt(v, 10)),
    learning_rate_multiplier: hyper("#job-lr", "learning_rate_multiplier", parseFloat),
    n_epochs: hyper("#job-epochs", "n_epochs", (v) => parseInt(v, 10)),
  };
  let imprint = {};
  const extra = $("#job-extra").value.trim();
  if (extra) {
    try { imprint = JSON.parse(extra); } catch (exc) { throw new Error(t("jobs.badJson") + exc.message); }
  }
  if ($("#job-kb").value) imprint.kb = $("#job-kb").value;
  if ($("#job-reading").value !== "") imprint.reading_examples = parseInt($("#job-reading").value, 10);
  const body = {
    model: $("#job-model").value.trim(),
    training_file: $("#job-training").value,
    method: { type: "supervised", supervised: { hyperparameters: hp } },
  };
  if ($("#job-validation").value) body.validation_file = $("#job-validation").value;
  if ($("#job-suffix").value.trim()) body.suffix = $("#job-suffix").value.trim();
  if (Object.keys(imprint).length) body.imprint = imprint;
  const job = await api("/v1/fine_tuning/jobs", { method: "POST", json: body });
  await selectJob(job.id);
}

async function selectJob(id) {
  state.job = id;
  state.points = null;
  $("#job-detail").hidden = false;
  $("#job-id").textContent = id;
  Plotly.purge("loss-chart");
  Plotly.purge("acc-chart");
  await pollJob();
}

const TERMINAL = ["succeeded", "failed", "cancelled"];

async function pollJob() {
  clearTimeout(state.timer);
  const id = state.job;
  if (!id) return;
  let job;
  try {
    [job] = await Promise.all([api(`/v1/fine_tuning/jobs/${id}`), renderEvents(id), loadJobs()]);
  } catch (err) {
    showError(err);
    state.timer = setTimeout(pollJob, 3000);
    return;
  }
  if (id !== state.job) return;
  const pill = $("#job-status");
  pill.textContent = job.status;
  pill.className = "pill " + job.status;
  $("#job-cancel").disabled = TERMINAL.includes(job.status);
  const err = job.error && job.error.message ? " · " + job.error.message : "";
  $("#job-summary").textContent = t("jobs.summary", {
    hp: JSON.stringify(job.hyperparameters), tok: job.trained_tokens ?? "—", ft: job.fine_tuned_model || "—",
  }) + err;
  if (!TERMINAL.includes(job.status) && !document.hidden) state.timer = setTimeout(pollJob, 1000);
  else if (!TERMINAL.includes(job.status)) state.timer = setTimeout(pollJob, 5000);
}

async function renderEvents(id) {
  const events = (await api(`/v1/fine_tuning/jobs/${id}/events?limit=1000`)).data.slice().reverse();
  const list = $("#job-events");
  const following = list.scrollTop + list.clientHeight >= list.scrollHeight - 4;  // the user did not scroll up
  list.replaceChildren(...events.map((e) =>
    el("li", { class: "sev-" + (e.level === "error" ? "error" : e.level === "warn" ? "warning" : "info") },
      `${new Date(e.created_at * 1000).toLocaleTimeString()}  ${e.message}`)));
  if (following) list.scrollTop = list.scrollHeight;
  // A step can be reported twice (training, then its validation): one point per step, later values win.
  const byStep = new Map();
  for (const e of events) {
    if (e.type !== "metrics" || !e.data) continue;
    const known = Object.fromEntries(Object.entries(e.data).filter(([, v]) => v !== null && v !== undefined));
    byStep.set(e.data.step, { ...(byStep.get(e.data.step) || {}), ...known });
  }
  drawCharts([...byStep.values()].sort((a, b) => a.step - b.step));
}

function series(rows, key, name, dash) {
  const pts = rows.filter((r) => r[key] !== null && r[key] !== undefined);
  return { x: pts.map((r) => r.step), y: pts.map((r) => r[key]), name, mode: "lines+markers", line: { dash } };
}

function drawCharts(rows) {
  const layout = (title, y) => ({
    title: { text: title, font: { size: 13 } }, margin: { t: 30, r: 10, b: 36, l: 44 },
    xaxis: { title: { text: t("jobs.step") } }, yaxis: { title: { text: y } }, legend: { orientation: "h", y: -0.25 },
  });
  Plotly.react("loss-chart", [series(rows, "train_loss", "train", "solid"), series(rows, "valid_loss", "validation", "dot")],
    layout(t("jobs.loss"), "loss"), { displayModeBar: false, responsive: true });
  Plotly.react("acc-chart", [series(rows, "train_mean_token_accuracy", "train", "solid"),
    series(rows, "valid_mean_token_accuracy", "validation", "dot")],
  layout(t("jobs.acc"), "accuracy"), { displayModeBar: false, responsive: true });
}

async function cancelJob() {
  if (!state.job) return;
  await api(`/v1/fine_tuning/jobs/${state.job}/cancel`, { method: "POST" });
  await pollJob();
}

// ── Adapters ─────────────────────────────────────────────────────────────────────────────────────────
async function loadAdapters() {
  state.models = (await api("/v1/models")).data;
  $("#ad-served").replaceChildren(...state.models.map((m) => el("li", {}, el("code", {}, m.id), " — ", m.description || "")));
  const served = state.models.map((m) => m.id).filter((id) => id.startsWith("imprint-adapter:")).map((id) => id.split(":")[1]);
  $("#adapter-names").replaceChildren(...served.map((n) => el("option", { value: n })));
  try { await loadKbs(); } catch (_) { /* the KB list is optional here */ }
  const status = $("#ad-status");
  let listing;
  try {
    listing = await api("/v1/adapters");
  } catch (err) {
    if (err.status === 401) throw err;
    status.textContent = t("ad.unavailable") + err.message;
    status.className = "status error";
    $("#ad-list").replaceChildren();
    return;
  }
  status.textContent = "";
  $("#ad-list").replaceChildren(...(listing.data || []).map(renderAdapter));
  const names = (listing.data || []).map((a) => a.name);
  $("#adapter-names").replaceChildren(...[...new Set([...names, ...served])].map((n) => el("option", { value: n })));
}

function scoresText(v) {
  const s = v.scores || v.eval_scores || v.gate;
  if (!s || typeof s !== "object") return "";
  return Object.entries(s).map(([k, x]) => `${k}: ${typeof x === "number" ? +x.toFixed(3) : JSON.stringify(x)}`).join(" · ");
}

// The registry's shape (GET /v1/adapters): {name, promoted_version, served_version, previous_versions,
// versions: [{version, promoted, created_at, fine_tuning_job_id, metrics, scores}], history: [...]}.
function renderAdapter(a) {
  const name = a.name || a.id;
  const versions = a.versions || [];
  const promoted = a.promoted_version ?? (versions.find((v) => v.promoted) || {}).version;
  const rows = versions.map((v) => el("tr", { dataset: { version: v.version }, class: v.version === promoted ? "selected" : "" },
    el("td", {}, v.version), el("td", {}, v.version === promoted ? "★" : ""),
    el("td", {}, scoresText(v)), el("td", {}, el("code", {}, v.fine_tuning_job_id || "")), el("td", {}, fmtTime(v.created_at)),
    el("td", {}, el("button", { class: "secondary promote", disabled: v.version === promoted ? "" : null, onclick: guarded(() => promote(name, v.version)) }, t("ad.promote")))));
  const history = (a.history || []).map((h) => el("li", {},
    `${fmtTime(h.created_at)} · ${h.action} v${h.version}${h.from_version ? " ← v" + h.from_version : ""} · ${h.reason || ""}`));
  const back = el("button", { class: "secondary rollback", onclick: guarded(() => rollback(name)) }, t("ad.rollback"));
  if (a.previous_versions && !a.previous_versions.length) back.disabled = true;
  return el("div", { class: "adapter", dataset: { name } },
    el("h3", {}, name, " ", el("small", {}, a.served_version ? t("ad.servedV", { v: a.served_version }) : ""), " ", back),
    el("table", {}, el("thead", {}, el("tr", {}, ...["ad.version", "ad.promoted", "ad.scores"].map((k) => el("th", {}, t(k))),
      el("th", {}, t("ad.job")), el("th", {}, t("data.created")), el("th", {}))), el("tbody", {}, rows)),
    history.length ? el("details", {}, el("summary", {}, t("ad.history")), el("ul", {}, history)) : "");
}

async function promote(name, version) {
  const r = await api(`/v1/adapters/${encodeURIComponent(name)}/promote`, { method: "POST", json: { version } });
  await loadAdapters();
  $("#ad-status").textContent = t("ad.done") + `${name}: v${r.promoted_version ?? version}`;
  $("#ad-status").className = "status ok";
}

async function rollback(name) {
  const r = await api(`/v1/adapters/${encodeURIComponent(name)}/rollback`, { method: "POST" });
  await loadAdapters();
  $("#ad-status").textContent = t("ad.done") + `${name}: v${r.promoted_version ?? "?"}`;
  $("#ad-status").className = "status ok";
}

async function staleness() {
  const name = $("#stale-adapter").value.trim();
  const kb = $("#stale-kb").value;
  const box = $("#stale-result");
  box.replaceChildren();
  const r = await api(`/v1/adapters/${encodeURIComponent(name)}/staleness?kb=${encodeURIComponent(kb)}`);
  const stale = r.stale || [];
  box.replaceChildren(
    el("p", {}, `${t("ad.checked")} ${r.checked ?? "—"} · ${t("ad.staleN")} ${stale.length} · ${t("ad.consistent")} ${r.consistent ?? "—"} · ${t("ad.unclear")} ${r.unclear ?? "—"}`),
    el("table", {}, el("thead", {}, el("tr", {}, ...["ad.question", "ad.trained", "ad.document", "ad.source"].map((k) => el("th", {}, t(k))))),
      el("tbody", {}, stale.map((s) => el("tr", {}, el("td", {}, s.question), el("td", {}, s.trained_answer), el("td", {}, s.document_answer),
        el("td", {}, s.source ? `${s.source.source || s.source.doc_id} ${s.source.heading || ""} (${s.source.modified || ""})` : ""))))));
}

// ── Knowledge bases ──────────────────────────────────────────────────────────────────────────────────
async function loadKbTab() {
  await loadKbs();
  if (!state.kbs.length) { $("#kb-status").textContent = t("kb.none"); $("#kb-docs").replaceChildren(); return; }
  await loadDocs();
}

async function loadDocs() {
  const name = $("#kb-select").value;
  if (!name) return;
  const docs = (await api(`/v1/kb/${encodeURIComponent(name)}/documents`)).data;
  const kb = state.kbs.find((k) => k.id === name) || {};
  $("#kb-status").textContent = `${name}: ${docs.length} ${t("kb.docs")}, ${kb.chunks ?? "?"} ${t("kb.chunks")}, ${kb.embedder || ""}`;
  $("#kb-docs").replaceChildren(...docs.map((d) => el("details", { class: "doc", dataset: { id: d.id } },
    el("summary", {}, el("b", {}, d.source || d.id), ` · ${d.title} · ${t("kb.modified")} ${d.modified} · ${d.chunks.length} ${t("kb.chunks")}`),
    d.chunks.map((c) => el("pre", {}, `[${c.start_char}–${c.end_char}] ${c.heading ? c.heading + "\n" : ""}${c.text}`)))));
}

async function reindex() {
  const name = $("#kb-select").value;
  if (!name) return;
  const r = await api(`/v1/kb/${encodeURIComponent(name)}/reindex`, { method: "POST" });
  const counts = Object.entries(r).filter(([, v]) => typeof v === "number").map(([k, v]) => `${k} ${v}`).join(" · ");
  await loadKbs();
  await loadDocs();
  $("#kb-status").textContent = t("kb.reindexed") + counts;
}

async function search() {
  const name = $("#kb-select").value;
  const q = $("#kb-query").value.trim();
  if (!name || !q) return;
  const hits = (await api(`/v1/kb/${encodeURIComponent(name)}/search?q=${encodeURIComponent(q)}&k=5`)).data;
  $("#kb-hits").replaceChildren(...(hits.length ? hits.map((h, i) => el("li", { class: "hit" },
    el("div", { class: "cite" }, `[${i + 1}] ${h.source}${h.heading ? " › " + h.heading : ""} · ${h.start_char}–${h.end_char} · score ${(+h.score).toFixed(3)} · ${t("kb.modified")} ${h.modified}`),
    el("div", {}, h.text))) : [el("li", {}, t("kb.noHits"))]));
}

// ── Playground ───────────────────────────────────────────────────────────────────────────────────────
async function loadPlayground() {
  state.models = (await api("/v1/models")).data;
  const ids = state.models.map((m) => m.id).filter((id) => id.startsWith("ft:") || id.startsWith("imprint-adapter"));
  const sel = $("#pg-adapter");
  const keep = sel.value;
  // The newest fine-tuned model first: that is the one a user who just trained wants to try.
  const ordered = [...ids.filter((i) => i.startsWith("ft:") && !i.includes(":ckpt-")).reverse(), ...ids.filter((i) => !i.startsWith("ft:")), ...ids.filter((i) => i.includes(":ckpt-"))];
  sel.replaceChildren(...ordered.map((id) => el("option", { value: id }, id)));
  if (keep && ordered.includes(keep)) sel.value = keep;
}

async function askAll() {
  const q = $("#pg-question").value.trim();
  if (!q) { showError(t("pg.empty")); return; }
  const max = parseInt($("#pg-max").value, 10) || 64;
  const models = { base: "imprint-base", adapter: $("#pg-adapter").value || "imprint-adapter", rag: "imprint-rag", routed: "imprint" };
  await Promise.all(Object.entries(models).map(([mode, model]) => askOne(mode, model, q, max)));
}

async function askOne(mode, model, question, max) {
  const card = document.querySelector(`.card[data-mode="${mode}"] .body`);
  card.parentElement.classList.remove("done", "failed");
  card.replaceChildren(el("div", { class: "meta" }, el("code", {}, model)), el("div", { class: "answer" }, t("pg.waiting")));
  try {
    const r = await api("/v1/chat/completions", {
      method: "POST", json: { model, messages: [{ role: "user", content: question }], max_tokens: max },
    });
    const info = r.imprint || {};
    const cites = (info.citations || []).map((c) => el("li", { class: "cite" },
      `[${c.id}] ${c.source}${c.heading ? " › " + c.heading : ""}${c.modified ? " (" + c.modified + ")" : ""}${c.cited ? " ✓" : ""}`));
    card.replaceChildren(
      el("div", { class: "meta" }, el("code", {}, r.model)),
      el("div", { class: "answer" }, r.choices[0].message.content || ""),
      el("div", { class: "meta route" }, el("b", {}, t("pg.route") + ": "), info.route || "—"),
      el("div", { class: "meta reason" }, el("b", {}, t("pg.reason") + ": "), info.reason || "—"),
      el("div", { class: "meta tokens" }, el("b", {}, t("pg.prompt") + ": "), `${r.usage.prompt_tokens} (${t("pg.retrieved")} ${info.retrieved_prompt_tokens ?? 0})`),
      ...(cites.length ? [el("div", { class: "meta" }, el("b", {}, t("pg.citations") + ":"), el("ol", {}, cites))] : []));
    card.parentElement.classList.add("done");
  } catch (err) {
    card.replaceChildren(el("div", { class: "meta" }, el("code", {}, model)), el("div", { class: "error" }, err.message));
    card.parentElement.classList.add("failed");
  }
}

// ── wiring ───────────────────────────────────────────────────────────────────────────────────────────
document.addEventListener("DOMContentLoaded", () => {
  applyLang();
  $("#lang-toggle").addEventListener("click", () => {
    lang = lang === "zh" ? "en" : "zh";
    localStorage.setItem("imprint.lang", lang);
    applyLang();
    if (state.report) renderReport(state.report);
    if (!$("#app").hidden) showTab(location.hash.slice(1));
  });
  $("#key-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    sessionStorage.setItem("imprint.key", $("#api-key").value.trim());
    $("#key-message").textContent = "";
    start();
  });
  $("#key-change").addEventListener("click", () => askKey(""));
  document.querySelectorAll("#tabs button").forEach((b) => b.addEventListener("click", () => showTab(b.dataset.tab)));
  $("#data-form").addEventListener("submit", guarded(uploadData));
  $("#job-form").addEventListener("submit", guarded(createJob));
  $("#job-cancel").addEventListener("click", guarded(cancelJob));
  $("#stale-form").addEventListener("submit", guarded(staleness));
  $("#kb-select").addEventListener("change", guarded(loadDocs));
  $("#kb-reindex").addEventListener("click", guarded(reindex));
  $("#kb-search-form").addEventListener("submit", guarded(search));
  $("#pg-form").addEventListener("submit", guarded(askAll));
  window.addEventListener("unhandledrejection", (ev) => showError(ev.reason));
  window.addEventListener("error", (ev) => showError(ev.message));
  start();
});
