// SMS segments, as contact_center/domain/channels.py `sms_segments` counts them: GSM 03.38 text is
// 160 characters in one segment and 153 per segment when split (the extended characters ^{}\[~]|€ take
// two); anything outside it (an emoji, most non-Latin scripts) makes the whole message UCS-2: 70 and 67,
// counted in UTF-16 code units. No imports: the browser test loads this module as it is.

const GSM_BASIC = new Set(
  "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" + "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà",
);
const GSM_EXTENDED = new Set("^{}\\[~]|€\f");

/** {segments, encoding: "GSM-7"|"UCS-2", units, perSegment, capacity} of a text. */
export function smsSegments(text) {
  const chars = [...String(text ?? "")];
  if (chars.every((ch) => GSM_BASIC.has(ch) || GSM_EXTENDED.has(ch))) {
    const units = chars.reduce((n, ch) => n + (GSM_EXTENDED.has(ch) ? 2 : 1), 0);
    const segments = units <= 160 ? 1 : Math.ceil(units / 153);
    return { segments, encoding: "GSM-7", units, perSegment: segments === 1 ? 160 : 153, capacity: segments === 1 ? 160 : segments * 153 };
  }
  const units = String(text).length; // UTF-16 code units: an astral character (most emoji) takes two
  const segments = units <= 70 ? 1 : Math.ceil(units / 67);
  return { segments, encoding: "UCS-2", units, perSegment: segments === 1 ? 70 : 67, capacity: segments === 1 ? 70 : segments * 67 };
}

/** The composer's line under an SMS reply: "42/160 · 1 segment · GSM-7". */
export function smsMeter(text) {
  const s = smsSegments(text);
  const hint =
    s.encoding === "UCS-2"
      ? "A character outside the GSM-7 alphabet (an emoji, an accent GSM lacks) makes the whole message UCS-2: 70 characters in one segment, 67 per segment when split."
      : "GSM-7: 160 characters in one segment, 153 per segment when split; ^ { } \\ [ ~ ] | € count as two.";
  return {
    text: `${s.units}/${s.capacity} · ${s.segments} segment${s.segments === 1 ? "" : "s"} · ${s.encoding}`,
    title: hint,
    warn: s.segments > 1 || s.encoding === "UCS-2",
    data: { segments: String(s.segments), encoding: s.encoding, units: String(s.units) },
  };
}
