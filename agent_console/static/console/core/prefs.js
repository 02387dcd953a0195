// The agent's preferences in this browser (localStorage), as JSON; a browser that refuses storage (private
// mode, a full quota) just forgets them. Keys start with "cc.console.".

export function loadPref(name, fallback) {
  try {
    const raw = localStorage.getItem(`cc.console.${name}`);
    if (raw === null) return fallback;
    const value = JSON.parse(raw);
    return value === null || value === undefined ? fallback : value;
  } catch {
    return fallback;
  }
}

export function savePref(name, value) {
  try {
    if (value === undefined) localStorage.removeItem(`cc.console.${name}`);
    else localStorage.setItem(`cc.console.${name}`, JSON.stringify(value));
  } catch {
    /* storage refused: the preference lasts as long as the page */
  }
}
