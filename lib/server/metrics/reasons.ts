// Why a reading was refused, as one of a few fixed words: the label of
// `techtemp_readings_refused_total{reason=…}`. The refusal's own sentence
// (lib/shared/contract.ts) holds the values sent, so it cannot be a label.

/** Every reason label, so each series exists from the start (at 0). */
export const REFUSAL_REASONS = [
  "not_json",
  "not_object",
  "missing_field",
  "not_a_number",
  "not_finite",
  "out_of_range",
  "bad_timestamp",
  "future_timestamp",
  "other",
] as const;

/** A refusal reason label. */
export type RefusalReason = (typeof REFUSAL_REASONS)[number];

/** The label of a refusal, from the sentence parseReading gave. */
export function refusalReason(sentence: string): RefusalReason {
  if (sentence.startsWith("payload is not valid JSON")) return "not_json";
  if (sentence.startsWith("payload is not a JSON object")) return "not_object";
  if (sentence.endsWith(" is missing")) return "missing_field";
  if (sentence.includes("must be a number")) return "not_a_number";
  if (sentence.endsWith("must be finite")) return "not_finite";
  if (sentence.includes(" is outside ")) return "out_of_range";
  if (sentence.startsWith("ts must be epoch milliseconds")) return "bad_timestamp";
  if (sentence.includes("in the future")) return "future_timestamp";
  return "other";
}
