// must-post-daily.js — a mailing list whose members must post at least once a day.
//
//   Subject "subscribe" / "unsubscribe" → join or leave (with a confirmation).
//   A member's post → sent on to every other member, and kept in the archive feed.
//   Every day at midnight UTC (the schedule below), members who have been silent for 24 hours
//   are unsubscribed, and told why.
//
// Files: members.json (array of addresses), last-seen.json ({address: ms of their last post,
// or of joining}).

const MEMBERS = "members.json";
const LAST_SEEN = "last-seen.json";
const DAY_MS = 24 * 60 * 60 * 1000;

export const schedule = "0 0 * * *";

export function onMessage(msg, thwonk) {
  const sender = (msg.sender.address || msg.from).toLowerCase();
  const command = msg.subject.trim().toLowerCase();
  const members = thwonk.files.readJSON(MEMBERS) ?? [];
  const lastSeen = thwonk.files.readJSON(LAST_SEEN) ?? {};
  const isMember = members.includes(sender);

  if (command === "subscribe") {
    if (!isMember) {
      thwonk.files.writeJSON(MEMBERS, [...members, sender]);
    }
    // Joining counts as being seen: a newcomer has a full day to say hello.
    lastSeen[sender] = thwonk.now();
    thwonk.files.writeJSON(LAST_SEEN, lastSeen);
    thwonk.reply(msg, {
      text: `You are on ${thwonk.address}. Post at least once a day, ` +
        `or you will be unsubscribed at the next midnight (UTC) check.`,
    });
    return;
  }
  if (command === "unsubscribe") {
    thwonk.files.writeJSON(MEMBERS, members.filter((m) => m !== sender));
    delete lastSeen[sender];
    thwonk.files.writeJSON(LAST_SEEN, lastSeen);
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

  lastSeen[sender] = thwonk.now();
  thwonk.files.writeJSON(LAST_SEEN, lastSeen);
  for (const member of members) {
    if (member !== sender) {
      thwonk.send({ to: member, subject: msg.subject, text: msg.text });
    }
  }
  thwonk.feed("archive").publish({ from: sender, subject: msg.subject, text: msg.text }, msg.id);
}

// At the daily tick: everyone silent for 24 hours or more leaves the list, with a note.
export function onSchedule(event, thwonk) {
  const now = thwonk.now();
  const members = thwonk.files.readJSON(MEMBERS) ?? [];
  const lastSeen = thwonk.files.readJSON(LAST_SEEN) ?? {};
  const staying = [];
  for (const member of members) {
    const seen = lastSeen[member] ?? 0;
    if (now - seen < DAY_MS) {
      staying.push(member);
      continue;
    }
    delete lastSeen[member];
    thwonk.send({
      to: member,
      subject: `You have been unsubscribed from ${thwonk.address}`,
      text: `Members of ${thwonk.address} must post at least once a day. ` +
        `We have not heard from you for 24 hours, so at the check of ${event.at} ` +
        `you were unsubscribed. Send a message with the subject "subscribe" to join again.`,
    });
    thwonk.log(`${member} unsubscribed: silent since ${seen ? new Date(seen).toISOString() : "ever"}`);
  }
  if (staying.length !== members.length) {
    thwonk.files.writeJSON(MEMBERS, staying);
    thwonk.files.writeJSON(LAST_SEEN, lastSeen);
  }
}
