// The forms of the sign-in, account and security pages, checked like the
// other pages' forms (lib/server/http/pages/forms.ts): a message per field,
// without the field's name (the page shows it next to the field). Passwords
// are read as typed (not trimmed) and are never sent back to the page.

import { t } from "elysia";
import { invalid } from "../../../shared/errors.ts";
import { ENROLL_MAX_USES, ENROLL_TTL_MINUTES } from "../../auth/enrollment.ts";
import { PASSWORD_LENGTH } from "../../auth/passwords.ts";
import { USER_NAME } from "../../auth/setup.ts";
import { TOKEN_NAME } from "../../auth/tokens.ts";
import { choiceParam, decodedText } from "../params.ts";
import { defineForm, textField } from "../pages/forms.ts";

const [MIN, MAX] = PASSWORD_LENGTH;

/** A name of `pattern`, required. */
const nameField = (field: string, pattern: RegExp, what: string) =>
  decodedText((value) => {
    if (value === "") throw invalid(field, `enter ${what}`);
    if (!pattern.test(value)) throw invalid(field, "1-50 characters of A-Z a-z 0-9 . _ -");
    return value;
  });

/** A password being typed to sign in: anything up to the longest accepted. */
const password = (field: string) =>
  decodedText((value) => {
    if (value === "") throw invalid(field, "enter the password");
    if ([...value].length > MAX) throw invalid(field, `at most ${MAX} characters`);
    return value;
  });

/** A new password: its length is checked here, that it was typed twice alike by the route. */
const newPassword = (field: string) =>
  decodedText((value) => {
    if ([...value].length < MIN) throw invalid(field, `at least ${MIN} characters`);
    if ([...value].length > MAX) throw invalid(field, `at most ${MAX} characters`);
    return value;
  });

/** A whole number from `min` to `max`; "" is `fallback`. */
const wholeField = (field: string, min: number, max: number, fallback: number) =>
  decodedText((value) => {
    if (value === "") return fallback;
    const n = /^\d+$/.test(value) ? Number(value) : NaN;
    if (!(n >= min && n <= max)) throw invalid(field, `a whole number from ${min} to ${max}`);
    return n;
  });

/** A token from a setup or reset link (the page fills it from the link; it can be pasted). */
const linkToken = textField("token", 100, "paste the token: the part of the link after #");

/** Signing in; `next` is where to go afterwards. */
export const loginForm = defineForm(
  { name: nameField("name", USER_NAME, "your account name"), password: password("password"), next: t.String() },
  { untrimmed: ["password"] },
);

/** The first owner, with the setup link's token. */
export const setupForm = defineForm(
  {
    token: linkToken,
    name: nameField("name", USER_NAME, "a name for the owner account"),
    password: newPassword("password"),
    password2: t.String(),
  },
  { untrimmed: ["password", "password2"] },
);

/** A new password with a reset link's token. */
export const resetForm = defineForm(
  { token: linkToken, password: newPassword("password"), password2: t.String() },
  { untrimmed: ["password", "password2"] },
);

/** Changing one's own password. */
export const ownPasswordForm = defineForm(
  { current: password("current"), password: newPassword("password"), password2: t.String() },
  { untrimmed: ["current", "password", "password2"] },
);

/** A new viewer account. */
export const viewerForm = defineForm(
  { name: nameField("name", USER_NAME, "a name for the account"), password: newPassword("password") },
  { untrimmed: ["password"] },
);

/** The owner setting an account's password. */
export const setPasswordForm = defineForm({ password: newPassword("password") }, { untrimmed: ["password"] });

/** Deleting an account: the box must be ticked. */
export const confirmForm = defineForm({ confirm: t.Literal("yes", { error: "tick the box to confirm" }) });

/** A new API token. */
export const tokenForm = defineForm({
  name: nameField("name", TOKEN_NAME, "a name (what will use it: grafana, home-assistant…)"),
  scope: choiceParam("scope", ["read", "write"] as const),
});

/** A new enrollment token. */
export const enrollmentForm = defineForm({
  ttl_minutes: wholeField("ttl_minutes", ENROLL_TTL_MINUTES.min, ENROLL_TTL_MINUTES.max, ENROLL_TTL_MINUTES.default),
  max_uses: wholeField("max_uses", ENROLL_MAX_USES.min, ENROLL_MAX_USES.max, ENROLL_MAX_USES.default),
});

/** Turning one of the owner's switches on or off. */
export const switchForm = defineForm({
  switch: choiceParam("switch", ["public_read", "accept_anonymous_sensors"] as const),
  value: choiceParam("value", ["on", "off"] as const),
});
