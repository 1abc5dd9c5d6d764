/** @jsxImportSource @kitajs/html */
// Signing in: the sign-in form, the first-start setup of the owner account
// and the password reset, both opened from a one-time link whose token
// static/auth.js moves from the link's fragment into the form. These forms
// have no session yet, so no CSRF field: the server checks their Origin.
// A password is never written back into a page.

import { Layout } from "./layout.tsx";
import { esc, Field, Input, type FormState, type Shell } from "./parts.tsx";

/** A password input, always empty (what was typed is not sent back). */
export function PasswordInput(props: { form: FormState; name: string; autocomplete: string }): JSX.Element {
  const error = props.form.errors[props.name];
  return (
    <input
      id={props.name}
      name={props.name}
      type="password"
      autocomplete={props.autocomplete}

      aria-invalid={error ? "true" : undefined}
      aria-describedby={error ? `${props.name}-error` : undefined}
    />
  );
}

/** What the sign-in page shows. */
export interface LoginPageData {
  shell: Shell;
  form: FormState;
  /** Whether an owner exists (before, there is nothing to sign in to). */
  ownerExists: boolean;
  notice?: string;
}

/** The sign-in page. */
export function LoginPage(data: LoginPageData): JSX.Element {
  const { form } = data;
  return (
    <Layout shell={data.shell} title="Sign in" section="account">
      <main id="content" class="narrow">
        <h1>Sign in</h1>
        {data.notice ? (
          <p class="notice" role="status">
            {esc(data.notice)}
          </p>
        ) : (
          ""
        )}
        {data.ownerExists ? (
          <form method="post" action="/login" class="panel" id="login">
            <input type="hidden" name="next" value={form.values.next ?? "/"} />
            <Field label="Name" id="name" error={form.errors.name}>
              <Input form={form} name="name" />
            </Field>
            <Field label="Password" id="password" error={form.errors.password}>
              <PasswordInput form={form} name="password" autocomplete="current-password" />
            </Field>
            <button type="submit">Sign in</button>
            <p class="muted">
              Forgot the password? On the server, <code>sudo techtemp-server reset-password NAME</code> prints a link to set a new
              one.
            </p>
          </form>
        ) : (
          <p class="panel">
            There is no account yet. Open the setup link printed in the server's log (
            <code>journalctl -u techtemp-server | grep setup</code>, or <code>sudo techtemp-server setup-link</code> for a new
            one) to create the owner account.
          </p>
        )}
      </main>
    </Layout>
  );
}

/** What the setup and reset pages show. */
export interface LinkPageData {
  shell: Shell;
  form: FormState;
  /** Setup only: an owner exists already, there is nothing to set up. */
  done?: boolean;
  /** Reset only: the account the link resets, when the link is valid. */
  account?: string | null;
}

/** The token field of a one-time link (filled from the link by static/auth.js). */
function TokenField({ form }: { form: FormState }): JSX.Element {
  return (
    <Field
      label="Token from the link"
      id="token"
      error={form.errors.token}
      hint="Filled in from the link; else paste the part after #"
    >
      <Input form={form} name="token" />
    </Field>
  );
}

function NewPasswordFields({ form }: { form: FormState }): JSX.Element {
  return (
    <>
      <Field label="Password" id="password" error={form.errors.password} hint="At least 10 characters">
        <PasswordInput form={form} name="password" autocomplete="new-password" />
      </Field>
      <Field label="Password again" id="password2" error={form.errors.password2}>
        <PasswordInput form={form} name="password2" autocomplete="new-password" />
      </Field>
    </>
  );
}

/** The first start: the owner account, from the setup link. */
export function SetupPage(data: LinkPageData): JSX.Element {
  const { form } = data;
  return (
    <Layout shell={data.shell} title="Set up" section="account" scripts={["auth.js"]}>
      <main id="content" class="narrow">
        <h1>Create the owner account</h1>
        {data.done ? (
          <p class="panel">
            The owner account exists already. <a href="/login">Sign in</a>.
          </p>
        ) : (
          <form method="post" action="/setup" class="panel" id="setup">
            <p class="muted">
              The owner may do everything: place sensors, manage rooms, add household members (viewers, who can only read) and
              make API tokens.
            </p>
            <TokenField form={form} />
            <Field label="Name" id="name" error={form.errors.name} hint="Letters, digits, . _ -">
              <Input form={form} name="name" placeholder="owner" />
            </Field>
            <NewPasswordFields form={form} />
            <button type="submit">Create and sign in</button>
          </form>
        )}
      </main>
    </Layout>
  );
}

/** A new password from a reset link (`techtemp-server reset-password NAME`). */
export function ResetPage(data: LinkPageData): JSX.Element {
  const { form } = data;
  return (
    <Layout shell={data.shell} title="New password" section="account" scripts={["auth.js"]}>
      <main id="content" class="narrow">
        <h1>Set a new password{data.account ? <> for {esc(data.account)}</> : ""}</h1>
        <form method="post" action="/reset" class="panel" id="reset">
          <p class="muted">Every session of the account is signed out; you are signed in here.</p>
          <TokenField form={form} />
          <NewPasswordFields form={form} />
          <button type="submit">Set the password and sign in</button>
        </form>
      </main>
    </Layout>
  );
}
