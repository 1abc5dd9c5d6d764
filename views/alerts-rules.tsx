/** @jsxImportSource @kitajs/html */
// Alert rules: the list (each with its edit form and delete), a form for a
// new rule, and the presets (the earlier TechTemp's thresholds) applied to a
// room, a device or the whole home in one click.

import { formAttrs } from "./devices.tsx";
import { Severity } from "./alerts.tsx";
import { Layout } from "./layout.tsx";
import { Csrf, esc, Field, Input, type FormState, type Shell } from "./parts.tsx";

/** A rule as listed. */
export interface RuleView {
  id: number;
  name: string;
  description: string;
  severity: string;
  /** "Freezer", "sensor aht20-x", "every room". */
  scope: string;
  enabled: boolean;
  /** Its fields as the edit form shows them. */
  values: Record<string, string>;
}

/** A choice of a select: value and label. */
export type Choice = [value: string, label: string];

/** What the rules page shows. */
export interface RulesPageData {
  shell: Shell;
  rules: RuleView[];
  /** Where a rule can apply: "" (every room), room:uid, device:uid. */
  scopes: Choice[];
  presets: Choice[];
  create: FormState;
  preset: FormState;
  /** The edit form of one rule as just posted. */
  edit?: { id: number; form: FormState };
  notice?: string;
}

/** The kinds, as the form offers them. */
export const KIND_CHOICES: Choice[] = [
  ["threshold", "Above or below a threshold"],
  ["stale", "Sensor stopped reporting"],
  ["failures", "Sensor reports read failures"],
  ["stuck", "Stuck value (identical readings)"],
  ["jump", "Implausible jump"],
  ["mould", "Mould risk"],
];
const METRIC_CHOICES: Choice[] = [
  ["temperature", "temperature (°C)"],
  ["humidity", "humidity (%)"],
  ["dew_point", "dew point (°C)"],
];
const SEVERITY_CHOICES: Choice[] = [
  ["critical", "critical"],
  ["warning", "warning"],
  ["info", "info"],
];

/** A select bound to a form's state. */
export function Select(props: { form: FormState; name: string; id: string; choices: Choice[] }): JSX.Element {
  const chosen = props.form.values[props.name] ?? "";
  const error = props.form.errors[props.name];
  return (
    <select
      id={props.id}
      name={props.name}
      aria-invalid={error ? "true" : undefined}
      aria-describedby={error ? `${props.id}-error` : undefined}
    >
      {props.choices.map(([value, label]) => (
        <option value={value} selected={chosen === value}>
          {esc(label)}
        </option>
      ))}
    </select>
  );
}

/** The fields of a rule (new or edited); `p` prefixes the ids when several forms share a page. */
function RuleFields({ form, p, scopes }: { form: FormState; p: string; scopes: Choice[] }): JSX.Element {
  const f = (name: string, label: string, hint: string, type = "text") => (
    <Field label={label} id={`${p}${name}`} error={form.errors[name]} hint={hint}>
      <Input form={form} name={name} id={`${p}${name}`} type={type} />
    </Field>
  );
  return (
    <>
      <div class="row">
        <Field label="Watch for" id={`${p}kind`} error={form.errors.kind}>
          <Select form={form} name="kind" id={`${p}kind`} choices={KIND_CHOICES} />
        </Field>
        <Field label="Where" id={`${p}scope`} error={form.errors.scope}>
          <Select form={form} name="scope" id={`${p}scope`} choices={scopes} />
        </Field>
        <Field label="Severity" id={`${p}severity`} error={form.errors.severity}>
          <Select form={form} name="severity" id={`${p}severity`} choices={SEVERITY_CHOICES} />
        </Field>
      </div>
      <div class="row">
        <Field label="Value" id={`${p}metric`} error={form.errors.metric} hint="Threshold and jump rules">
          <Select form={form} name="metric" id={`${p}metric`} choices={METRIC_CHOICES} />
        </Field>
        {f("min", "Below", "Threshold: alarm below this")}
        {f("max", "Above", "Threshold: above this; jump: the largest plausible change; mould: humidity % (70)")}
        {f("hysteresis", "Hysteresis", "How far back past the threshold before it resolves (empty: 0.5 °C, 2 %)")}
      </div>
      <div class="row">
        {f(
          "duration",
          "For (minutes)",
          "How long before it fires (empty: threshold 5, stuck 360, mould 720; jump: longest gap, 10)",
        )}
        {f("intervals", "Intervals", "Stopped reporting: after this many of the sensor's own intervals (5)")}
        {f("failures", "Failures", "Read failures in a row (3)")}
        {f("dew_margin", "Dew point margin (°C)", "Mould: also when the air is this close to its dew point")}
      </div>
      <Field label="Name" id={`${p}name`} error={form.errors.name} hint="Empty: described from the rule">
        <Input form={form} name="name" id={`${p}name`} />
      </Field>
    </>
  );
}

function RuleItem({ rule, data }: { rule: RuleView; data: RulesPageData }): JSX.Element {
  const editing = data.edit?.id === rule.id ? data.edit.form : null;
  const form = editing ?? { values: rule.values, errors: {} };
  const path = `/alerts/rules/${rule.id}`;
  return (
    <section class="panel" id={`rule-${rule.id}`}>
      <h2>
        <Severity severity={rule.severity} /> {esc(rule.name)} {rule.enabled ? "" : <small>(off)</small>}
      </h2>
      <p>
        {esc(rule.description)} · <strong>{esc(rule.scope)}</strong>
      </p>
      {data.shell.canWrite ? (
        <details open={editing ? true : undefined}>
          <summary>Change or delete</summary>
          <form {...formAttrs(path)}>
            <Csrf shell={data.shell} />
            <RuleFields form={form} p={`r${rule.id}-`} scopes={data.scopes} />
            <label>
              <input type="checkbox" name="enabled" value="yes" checked={form.values.enabled === "yes"} /> On
            </label>{" "}
            <button type="submit">Save</button>
          </form>
          <form {...formAttrs(`${path}/delete`)} class="inline">
            <Csrf shell={data.shell} />
            <button type="submit" class="danger">
              Delete
            </button>
          </form>
        </details>
      ) : (
        ""
      )}
    </section>
  );
}

/** The rules page. */
export function RulesPage(data: RulesPageData): JSX.Element {
  const { shell } = data;
  return (
    <Layout shell={shell} title="Alert rules" section="alerts">
      <main id="content">
        <h1>Alert rules</h1>
        <p class="subnav">
          <a href="/alerts">Alerts</a> · <a href="/alerts/channels">Channels and settings</a>
        </p>
        {data.notice ? (
          <p class="notice" role="status">
            {esc(data.notice)}
          </p>
        ) : (
          ""
        )}
        {shell.canWrite ? (
          <>
            <form {...formAttrs("/alerts/rules/preset")} class="panel" id="preset">
              <Csrf shell={shell} />
              <h2>From a preset</h2>
              <p class="muted">
                The earlier TechTemp's thresholds: temperature above 35 or below 5 °C critical, above 26 or below 18 °C; humidity
                above 85 or below 15 % critical, above 66 or below 30 %.
              </p>
              <div class="row">
                <Field label="Preset" id="preset-preset" error={data.preset.errors.preset}>
                  <Select form={data.preset} name="preset" id="preset-preset" choices={data.presets} />
                </Field>
                <Field label="Where" id="preset-scope" error={data.preset.errors.scope}>
                  <Select form={data.preset} name="scope" id="preset-scope" choices={data.scopes} />
                </Field>
              </div>
              <button type="submit">Add</button>
            </form>
            <form {...formAttrs("/alerts/rules")} class="panel" id="create-rule">
              <Csrf shell={shell} />
              <h2>New rule</h2>
              <RuleFields form={data.create} p="new-" scopes={data.scopes} />
              <button type="submit">Create</button>
            </form>
          </>
        ) : (
          <p class="muted" id="read-only">
            Only the owner can add, change or delete rules.
          </p>
        )}
        {data.rules.length === 0 ? (
          <p class="muted">No rule yet: nothing is watched.</p>
        ) : (
          data.rules.map((rule) => <RuleItem rule={rule} data={data} />)
        )}
      </main>
    </Layout>
  );
}
