"""The report's Jinja2 template (kept in Python so that it ships with the package)."""

REPORT_HTML = r"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{{ title }}</title>
<style>
 body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 24px; color: #222;
        max-width: 1400px; }
 h1 { font-size: 22px; } h2 { font-size: 18px; border-bottom: 1px solid #ccc; padding-bottom: 3px; margin-top: 28px; }
 h3 { font-size: 15px; margin: 14px 0 4px; }
 table { border-collapse: collapse; margin: 4px 0 12px; font-size: 12px; }
 th, td { border: 1px solid #ccc; padding: 3px 7px; text-align: right; vertical-align: middle; }
 th { background: #f2f2f2; } td.name, th.name { text-align: left; }
 td.best { background: #d9f2d9; font-weight: bold; }
 tr.baseline td { color: #777; font-style: italic; }
 .ci { color: #666; font-size: 11px; }
 .grid { display: flex; flex-wrap: wrap; gap: 18px; }
 .note { color: #555; font-size: 12px; max-width: 1100px; }
 .desc { color: #555; font-size: 11px; max-width: 420px; }
 pre { background: #f7f7f7; padding: 8px; font-size: 11px; max-height: 360px; overflow: auto; }
 img { image-rendering: pixelated; }
 td.img { text-align: left; }
</style></head><body>
<h1>{{ title }}</h1>
<p class="note">Generated {{ s.generated }} from {{ s.sources | join(", ") }}.
Every cell: value and its {{ ci_pct }}% cluster-bootstrap interval over test faces
(faces resampled with replacement, all edits of a face kept together). Green: the best model
of each column (ranked metrics only; the <i>no-edit</i> baseline, output = input, is shown
for reference and never ranked); &#9733; its interval overlaps no other model's,
&#9734; it does (the ranking is not significant). Realism feature space: <b>{{ s.feature_space }}</b>.</p>
{% if warnings %}<ul class="note">{% for w in warnings %}<li>{{ w }}</li>{% endfor %}</ul>{% endif %}

<h2>1. The matrix: models x test sets</h2>
<div class="grid">
{% for metric in metric_order %}{% set info = s.metrics[metric] %}
<div><h3>{{ metric }} <span class="ci">({{ info.direction }}{% if info.direction in ("lower", "higher") %} is better{% elif info.direction == "zero" %}: closest to 0 is better{% endif %})</span></h3>
<div class="desc">{{ info.description }}</div>
<table><tr><th class="name">model</th><th>real share</th>{% for ts in sets %}<th>{{ ts }}</th>{% endfor %}</tr>
{% for model in models %}{% set row = s.matrix[metric].get(model, {}) %}
<tr class="{{ 'baseline' if is_baseline(model) else '' }}"><td class="name">{{ model }}</td>
<td>{{ share(model) }}</td>
{% for ts in sets %}{% set c = row.get(ts) %}
<td class="{{ 'best' if s.best.get(metric, {}).get(ts) == model else '' }}">{% if c and c.value is not none %}{{ fmt(c.value) }}{% if s.best.get(metric, {}).get(ts) == model %}{% if s.best_significant.get(metric, {}).get(ts) %} &#9733;{% else %} &#9734;{% endif %}{% endif %}<br><span class="ci">[{{ fmt(c.ci_low) }}, {{ fmt(c.ci_high) }}] n={{ c.n }}</span>{% else %}&ndash;{% endif %}</td>
{% endfor %}</tr>
{% endfor %}</table></div>
{% endfor %}
</div>

<h2>2. Data efficiency: real-data share at fixed compute</h2>
<p class="note">Models trained for the same number of steps with different shares of real images per
batch. "Replaced" = 1 &minus; the smallest real share whose interval overlaps the real-only
model's interval (overlap is not proof of equivalence; with few test faces the intervals are wide).
Headline metrics here; every metric is in the JSON summary (<code>replacement</code>).</p>
{% if efficiency_png %}<img src="data:image/png;base64,{{ efficiency_png }}" alt="metric vs real share">{% else %}<p class="note">Needs at least two models with known real shares.</p>{% endif %}
{% if s.replacement %}<table><tr><th class="name">metric</th><th class="name">test set</th><th>real-only model</th><th>min real share matching it</th><th>synthetic share replaced</th><th class="name">significantly better than real-only</th></tr>
{% for metric in headline if metric in s.replacement %}{% for ts, r in s.replacement[metric].items() %}
<tr><td class="name">{{ metric }}</td><td class="name">{{ ts }}</td><td>{{ r.real_only_model }}</td><td>{{ fmt(r.min_share_matching_real) }}</td><td>{{ fmt(r.synthetic_share_replaced) }}</td><td class="name">{{ r.significantly_better_than_real_only | join(", ") or "none" }}</td></tr>
{% endfor %}{% endfor %}</table>{% endif %}

<h2>3. Per-AU results (single-AU sweeps, intensities {{ intensities }})</h2>
{% for ts, png in per_au_pngs %}<h3>{{ ts }}</h3><img src="data:image/png;base64,{{ png }}" alt="per-AU {{ ts }}"><br>{% endfor %}
{% if not per_au_pngs %}<p class="note">No AU judge results.</p>{% endif %}

<h2>4. Edits</h2>
<p class="note">Each image: input | output | attention A (white = input pixel kept, black = replaced by the colour map).</p>
{% for g in proto_grids %}<h3>{{ g.test_set }}: emotion prototypes, face {{ g.face_id }}</h3>
<table><tr><th class="name">target</th>{% for m in g.models %}<th>{{ m }}</th>{% endfor %}</tr>
{% for row in g.rows %}<tr><td class="name">{{ row.label }}</td>{% for png in row.pngs %}<td class="img">{% if png %}<img src="data:image/png;base64,{{ png }}">{% endif %}</td>{% endfor %}</tr>{% endfor %}
</table>{% endfor %}
{% for g in sweep_grids %}<h3>{{ g.test_set }}: AU sweeps, face {{ g.face_id }}</h3>
<p class="note">input | outputs at FACS {{ g.levels | join(", ") }} | attention at the highest intensity</p>
<table><tr><th class="name">AU</th><th class="name">model</th><th class="name">images</th></tr>
{% for row in g.rows %}<tr><td class="name">{{ row.au }}</td><td class="name">{{ row.model }}</td><td class="img"><img src="data:image/png;base64,{{ row.png }}"></td></tr>{% endfor %}
</table>{% endfor %}

<h2>5. Provenance: what produced each number</h2>
<h3>Models</h3>
<table><tr><th class="name">model</th><th class="name">checkpoint</th><th>sha1</th><th>step</th><th>size</th><th>real share</th><th class="name">training sources (kind, images, weight, manifest sha1)</th></tr>
{% for name in models %}{% set m = s.models[name] %}
<tr><td class="name">{{ name }}</td><td class="name">{{ m.get("checkpoint") or "-" }}</td><td>{{ (m.get("sha1") or "")[:12] }}</td><td>{{ m.get("step", "") }}</td><td>{{ m.get("image_size", "") }}</td><td>{{ share(name) }}</td>
<td class="name">{% for src in m.get("sources") or [] %}{{ src.name }}: {{ src.path }} ({{ src.get("kind") }}, {{ src.get("manifest_n_train") }} train images, w={{ src.get("weight") }}, manifest {{ src.get("manifest_sha1") }})<br>{% endfor %}{{ m.get("note") or "" }}</td></tr>
{% endfor %}</table>
{% for name in models %}{% if s.models[name].get("config") %}<details><summary>training config of {{ name }}</summary><pre>{{ yaml(s.models[name].config) }}</pre></details>{% endif %}{% endfor %}
<h3>Test sets</h3>
{% for name, t in s.test_sets.items() %}<details><summary>{{ name }}: {{ t.get("kind") }}, {{ t.get("n_faces") }} faces of {{ t.get("pool") }} ({{ t.get("root") }})</summary><pre>{{ yaml(t) }}</pre></details>{% endfor %}
<h3>Identity overlap between test faces and training data (must be 0)</h3><pre>{{ yaml(s.identity_overlap) }}</pre>
<h3>Realism reference</h3><pre>{{ yaml(s.realism_reference) }}</pre>
<h3>Judges</h3><pre>{{ yaml(s.judges) }}</pre>
<h3>Evaluation configs and commands</h3><pre>{{ yaml({"configs": s.eval_configs, "commands": s.commands}) }}</pre>
<h3>Package versions</h3><pre>{{ yaml(s.versions) }}</pre>
{% if extra_provenance %}<h3>Experiment</h3><pre>{{ yaml(extra_provenance) }}</pre>{% endif %}
</body></html>
"""
