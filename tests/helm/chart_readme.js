#!/usr/bin/env node
// Generates deploy/helm/blueprint-sync/README.md from Chart.yaml and the comments in
// values.yaml, so the chart's documentation cannot say something values.yaml does not:
//   node tests/helm/chart_readme.js            print the README
//   node tests/helm/chart_readme.js --write    rewrite README.md
//   node tests/helm/chart_readme.js --check    exit 1 when README.md is stale
// The chart check (helm_chart.test.js, ctest helm_chart_check) fails on a stale README too.
//
// values.yaml conventions: the comment right above a key describes it; a leading "-- " is
// dropped (the marker of a value's own description); comment lines indented past "# " are
// examples and keep their line. A mapping whose comment starts with "-- " is one row with
// its whole default (e.g. podSecurityContext); any other mapping with keys below it gets a
// row of its own only when it has a comment, then a row per key; every other key is a row
// with its default.
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const YAML = require('yaml');

const CHART = path.resolve(__dirname, '..', '..', 'deploy', 'helm', 'blueprint-sync');
const README = path.join(CHART, 'README.md');

// Prose may hold "<release>"; markdown would take it for an HTML tag.
function html(text) {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

// Comment text (yaml gives it without the "#") -> markdown for one table cell.
function cell(comment) {
  if (!comment) return '';
  const lines = comment.split('\n').map((l) => l.replace(/^ /, ''));
  const parts = [];
  for (const raw of lines) {
    if (raw.trim() === '') continue;
    const example = /^\s{2,}\S/.test(raw);
    const text = raw.trim().replace(/^-- /, '');
    if (example) parts.push(`<br>\`${text.replace(/`/g, "'")}\``);
    else parts.push(parts.length ? ` ${html(text)}` : html(text));
  }
  return parts.join('').replace(/\|/g, '\\|');
}

// A section's introduction: its comment as paragraphs; example lines as a code block.
function paragraph(comment) {
  const out = [];
  let code = [];
  let prose = [];
  const flush = () => {
    if (prose.length) out.push(prose.join(' '));
    if (code.length) out.push(['```text', ...code, '```'].join('\n'));
    prose = [];
    code = [];
  };
  for (const raw of comment.split('\n').map((l) => l.replace(/^ /, ''))) {
    if (raw.trim() === '') { flush(); continue; }
    if (/^\s{2,}\S/.test(raw)) {
      if (prose.length) { out.push(prose.join(' ')); prose = []; }
      code.push(raw.replace(/^\s{2}/, ''));
    } else {
      if (code.length) flush();
      prose.push(html(raw.trim().replace(/^-- /, '')));
    }
  }
  flush();
  return out.join('\n\n');
}

function defaultOf(node) {
  const v = node && typeof node.toJSON === 'function' ? node.toJSON() : (node && node.value !== undefined ? node.value : node);
  return `\`${JSON.stringify(v === undefined ? null : v)}\``.replace(/\|/g, '\\|');
}

// Rows [key, default, description] of a mapping, depth first, in file order. The comment
// above a mapping's first key is stored on the mapping (yaml's model), so it is passed down.
function rows(map, prefix, firstComment) {
  const out = [];
  map.items.forEach((pair, i) => {
    const key = `${prefix}${pair.key.value}`;
    const comment = i === 0 && firstComment ? firstComment : pair.key.commentBefore;
    const unit = comment && /^\s*-- /.test(comment);
    if (YAML.isMap(pair.value) && pair.value.items.length && !unit) {
      if (comment) out.push([key, '', cell(comment)]);
      out.push(...rows(pair.value, `${key}.`, pair.value.commentBefore));
    } else {
      out.push([key, defaultOf(pair.value), cell(comment)]);
    }
  });
  return out;
}

function table(rs) {
  return ['| Key | Default | Description |', '|---|---|---|',
          ...rs.map(([k, d, c]) => `| \`${k}\` | ${d || ''} | ${c} |`)].join('\n');
}

function generate() {
  const chart = YAML.parse(fs.readFileSync(path.join(CHART, 'Chart.yaml'), 'utf8'));
  const doc = YAML.parseDocument(fs.readFileSync(path.join(CHART, 'values.yaml'), 'utf8'));
  if (doc.errors.length) throw new Error(`values.yaml: ${doc.errors[0].message}`);
  const top = doc.contents.items;

  // The first key's comment starts with the file's own header, set off by a blank line.
  const firstComment = top[0].key.commentBefore || '';
  const split = firstComment.lastIndexOf('\n\n');
  const header = split >= 0 ? firstComment.slice(0, split) : '';
  const comments = top.map((p, i) => (i === 0 ? firstComment.slice(split + 1).replace(/^\n/, '') : p.key.commentBefore));

  const general = [];
  const sections = [];
  top.forEach((pair, i) => {
    const key = pair.key.value;
    const unit = comments[i] && /^\s*-- /.test(comments[i]);
    if (YAML.isMap(pair.value) && pair.value.items.length && !unit) {
      sections.push(`### \`${key}\`\n\n${comments[i] ? `${paragraph(comments[i])}\n\n` : ''}` +
                    table(rows(pair.value, `${key}.`, pair.value.commentBefore)));
    } else {
      general.push([key, defaultOf(pair.value), cell(comments[i])]);
    }
  });

  const maint = (chart.maintainers || []).map((m) => (m.email ? `${m.name} <${m.email}>` : m.name)).join(', ');
  return `${[
    `# ${chart.name} Helm chart`,
    '<!-- Generated by tests/helm/chart_readme.js from Chart.yaml and the comments in values.yaml:\n' +
    '     edit those, then run `node tests/helm/chart_readme.js --write` (the chart check fails otherwise). -->',
    chart.description.trim(),
    [`- Chart version ${chart.version}, blueprint-syncd ${chart.appVersion}; Kubernetes ${chart.kubeVersion}.`,
     `- Maintainers: ${maint || 'none listed'}.`,
     `- Keywords: ${(chart.keywords || []).join(', ')}.`].join('\n'),
    '## Install',
    'Build the image from `deploy/docker/Dockerfile` and push it where the cluster can pull it ' +
    '(`image.registry`, `image.repository`), give the pod Tencent Cloud credentials (`credentials`), then:',
    ['```sh',
     'helm install bps deploy/helm/blueprint-sync -n images --create-namespace \\',
     '  --set image.registry=ccr.ccs.tencentyun.com --set image.repository=example/blueprint-sync \\',
     '  --set credentials.existingSecret=blueprint-sync-tencentcloud',
     'helm test bps -n images        # the image\'s CLI lists a job through the Service',
     '```'].join('\n'),
    'The examples in `ci/*-values.yaml` show each mode (static key, TKE workload identity, metrics ' +
    'with alerts, mTLS, PostgreSQL with several replicas); `deploy/README.md` explains the ' +
    'deployment choices. `values.schema.json` rejects unknown keys (except under `global`, which ' +
    'belongs to a parent chart).',
    '## Values',
    header ? paragraph(header) : '',
    general.length ? `### Top-level values\n\n${table(general)}` : '',
    ...sections,
  ].filter((x) => x !== '').join('\n\n')}\n`;
}

module.exports = { generate, README };

if (require.main === module) {
  const arg = process.argv[2] || '';
  const text = generate();
  if (arg === '--write') {
    fs.writeFileSync(README, text);
  } else if (arg === '--check') {
    const current = fs.existsSync(README) ? fs.readFileSync(README, 'utf8') : '';
    if (current !== text) {
      console.error(`${path.relative(process.cwd(), README)} is stale: run node tests/helm/chart_readme.js --write`);
      process.exit(1);
    }
  } else if (arg === '') {
    process.stdout.write(text);
  } else {
    console.error('usage: node tests/helm/chart_readme.js [--write|--check]');
    process.exit(2);
  }
}
