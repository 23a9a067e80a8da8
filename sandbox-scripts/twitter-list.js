// twitter-list.js — a tiny mailing list in the spirit of early Twitter.
//
//   Subject "subscribe"    → you join the list (and get a confirmation).
//   Subject "unsubscribe"  → you leave it (and get a confirmation).
//   Anything else, from a member → sent on to every other member, body cut to 140 characters.
//   Anything else, from a stranger → a polite refusal.
//
// The member list lives in the thwonk's own file members.json (an array of addresses).

const MEMBERS = "members.json";
const LIMIT = 140;

export function onMessage(msg, thwonk) {
  // Who wrote: the From: header, falling back to the envelope sender. Lower case, so that
  // Alice@Example.org and alice@example.org are the same member.
  const sender = (msg.sender.address || msg.from).toLowerCase();
  const command = msg.subject.trim().toLowerCase();
  const members = thwonk.files.readJSON(MEMBERS) ?? [];
  const isMember = members.includes(sender);

  if (command === "subscribe") {
    if (!isMember) {
      thwonk.files.writeJSON(MEMBERS, [...members, sender]);
    }
    thwonk.reply(msg, { text: `You are on the list ${thwonk.address}. Welcome!` });
    return;
  }

  if (command === "unsubscribe") {
    thwonk.files.writeJSON(MEMBERS, members.filter((m) => m !== sender));
    thwonk.reply(msg, { text: `You have left ${thwonk.address}. Goodbye!` });
    return;
  }

  if (!isMember) {
    thwonk.reply(msg, {
      text: `Sorry, only members can post to ${thwonk.address}. ` +
        `Send a message with the subject "subscribe" to join.`,
    });
    return;
  }

  // A post: everyone but the author gets it, one message each so nobody sees the others'
  // addresses. Array.from counts characters, not UTF-16 units, so emoji are not cut in half.
  const text = Array.from(msg.text.trim()).slice(0, LIMIT).join("");
  for (const member of members) {
    if (member !== sender) {
      thwonk.send({ to: member, subject: msg.subject, text });
    }
  }
  thwonk.log(`post from ${sender} sent to ${members.length - 1} members`);
}
