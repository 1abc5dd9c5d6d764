/** @jsxImportSource @kitajs/html */
// One's own account (password, "sign out everywhere") and, for the owner,
// the household's accounts: add a viewer (read-only), set an account's
// password, delete an account.

import { PasswordInput } from "./auth.tsx";
import { formAttrs } from "./devices.tsx";
import { Layout } from "./layout.tsx";
import { Csrf, esc, Field, fmtTime, Input, type FormState, type Shell } from "./parts.tsx";

/** An account as the pages show it. */
export interface AccountRow {
  id: number;
  name: string;
  role: "owner" | "viewer";
  created_at: number;
  /** Sessions open now. */
  sessions: number;
}

/** What the account page shows. */
export interface AccountPageData {
  shell: Shell;
  account: AccountRow;
  password: FormState;
  notice?: string;
}

/** A notice line, when there is one. */
export function Notice({ text }: { text?: string }): JSX.Element {
  return text ? (
    <p class="notice" role="status">
      {esc(text)}
    </p>
  ) : (
    ""
  );
}

/** The signed-in person's account. */
export function AccountPage(data: AccountPageData): JSX.Element {
  const { account: a, password: form, shell } = data;
  const owner = a.role === "owner";
  return (
    <Layout shell={shell} title="Account" section="account">
      <main id="content">
        <h1>{esc(a.name)}</h1>
        <Notice text={data.notice} />
        <section class="panel" id="about">
          <p>
            {owner ? "Owner: may change everything." : "Viewer: may read every page, change nothing."} Signed in on{" "}
            {a.sessions === 1 ? "1 device or browser" : `${a.sessions} devices or browsers`}.
          </p>
          {owner ? (
            <p>
              <a href="/users">Accounts</a> · <a href="/tokens">API tokens</a> · <a href="/security">Security</a>
            </p>
          ) : (
            ""
          )}
        </section>
        <form method="post" action="/account/password" class="panel" id="password-form">
          <Csrf shell={shell} />
          <h2>Change the password</h2>
          <Field label="Current password" id="current" error={form.errors.current}>
            <PasswordInput form={form} name="current" autocomplete="current-password" />
          </Field>
          <Field label="New password" id="password" error={form.errors.password} hint="At least 10 characters">
            <PasswordInput form={form} name="password" autocomplete="new-password" />
          </Field>
          <Field label="New password again" id="password2" error={form.errors.password2}>
            <PasswordInput form={form} name="password2" autocomplete="new-password" />
          </Field>
          <p class="muted">Every other session of this account is signed out.</p>
          <button type="submit">Change</button>
        </form>
        <form method="post" action="/account/sign-out-everywhere" class="panel" id="everywhere">
          <Csrf shell={shell} />
          <h2>Sign out everywhere</h2>
          <p class="muted">Ends every session of this account, this one too: a lost phone is signed out.</p>
          <button type="submit" class="danger">
            Sign out everywhere
          </button>
        </form>
      </main>
    </Layout>
  );
}

/** What the accounts page shows. */
export interface UsersPageData {
  shell: Shell;
  accounts: AccountRow[];
  /** The signed-in owner's id (they cannot delete themselves). */
  self: number;
  add: FormState;
  /** A form of one account as just posted, with its problem. */
  edit?: { id: number; form: FormState; which: "password" | "delete" };
  notice?: string;
}

function UserItem({ a, data }: { a: AccountRow; data: UsersPageData }): JSX.Element {
  const { shell } = data;
  const posted = data.edit?.id === a.id ? data.edit : null;
  const form = posted?.form ?? { values: {}, errors: {} };
  const path = `/users/${a.id}`;
  return (
    <section class="panel" id={`user-${a.id}`}>
      <h2>
        {esc(a.name)} <small>{a.role}</small>
      </h2>
      <p class="muted">
        Since {fmtTime(a.created_at, shell.now, shell.timeZone)} · {a.sessions === 1 ? "1 session" : `${a.sessions} sessions`}
      </p>
      {a.id === data.self ? (
        <p class="muted">
          This is you: change your password on <a href="/account">your account</a>.
        </p>
      ) : (
        <details open={posted ? true : undefined}>
          <summary>Set a password or delete</summary>
          <form {...formAttrs(`${path}/password`)}>
            <Csrf shell={shell} />
            <Field
              label="New password"
              id={`password-${a.id}`}
              error={posted?.which === "password" ? form.errors.password : undefined}
              hint="Signs the account out everywhere"
            >
              <input id={`password-${a.id}`} name="password" type="password" autocomplete="new-password" />
            </Field>
            <button type="submit">Set</button>
          </form>
          <form {...formAttrs(`${path}/delete`)}>
            <Csrf shell={shell} />
            <label>
              <input type="checkbox" name="confirm" value="yes" /> Yes, delete {esc(a.name)}
            </label>{" "}
            <button type="submit" class="danger">
              Delete
            </button>
            {posted?.which === "delete" && form.errors.confirm ? (
              <div class="error" role="alert">
                {esc(form.errors.confirm)}
              </div>
            ) : (
              ""
            )}
          </form>
        </details>
      )}
    </section>
  );
}

/** The household's accounts (the owner's page). */
export function UsersPage(data: UsersPageData): JSX.Element {
  const { shell, add } = data;
  return (
    <Layout shell={shell} title="Accounts" section="account">
      <main id="content">
        <h1>Accounts</h1>
        <Notice text={data.notice} />
        <form {...formAttrs("/users")} class="panel" id="add-viewer">
          <Csrf shell={shell} />
          <h2>Add a viewer</h2>
          <p class="muted">A viewer sees every page and changes nothing: for the household.</p>
          <div class="row">
            <Field label="Name" id="name" error={add.errors.name}>
              <Input form={add} name="name" />
            </Field>
            <Field label="Password" id="password" error={add.errors.password} hint="At least 10 characters">
              <PasswordInput form={add} name="password" autocomplete="new-password" />
            </Field>
          </div>
          <button type="submit">Add</button>
        </form>
        {data.accounts.map((a) => (
          <UserItem a={a} data={data} />
        ))}
      </main>
    </Layout>
  );
}
