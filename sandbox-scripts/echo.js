// echo.js — answers every message with its own body.

export function onMessage(msg, thwonk) {
  thwonk.reply(msg, { text: msg.text });
}
