// archive.js — a list's archive on the web.
//
// Every message to the thwonk is kept (posts/N.json), and the archive is rendered as files
// under public/, which the server publishes at /pub/{address}/ without running the script:
//   public/index.html         every post, newest first
//   public/posts/N.html       one page per post
//   public/feed.xml           an Atom feed of the newest posts
// Each post is also published on the Thoonk feed "posts", for live readers.
//
// Everything a sender wrote is escaped before it becomes HTML or XML: a subject of
// `<script>alert("x")</script>` shows as text. (The server's CSP would stop a script
// anyway; escaping keeps the page correct.)

const FEED_ENTRIES = 20;

export function onMessage(msg, thwonk) {
  const index = thwonk.files.readJSON("posts/index.json") ?? [];
  const n = index.length + 1;
  const post = {
    n,
    subject: msg.subject || "(no subject)",
    author: msg.sender.name || (msg.sender.address || msg.from).split("@")[0],
    date: msg.receivedAt,
    text: msg.text,
  };
  thwonk.files.writeJSON(`posts/${n}.json`, post);
  index.push({ n, subject: post.subject, author: post.author, date: post.date });
  thwonk.files.writeJSON("posts/index.json", index);

  thwonk.files.write(`public/posts/${n}.html`, postPage(post, thwonk));
  thwonk.files.write("public/index.html", indexPage(index, thwonk));
  thwonk.files.write("public/feed.xml", atomFeed(index, thwonk));
  thwonk.feed("posts").publish({ n, subject: post.subject, author: post.author }, String(n));
}

// Text into HTML or XML: the five characters that could end a text or an attribute.
function escape(text) {
  return String(text)
    .replaceAll("&", "&amp;")
    .replaceAll("<", "&lt;")
    .replaceAll(">", "&gt;")
    .replaceAll('"', "&quot;")
    .replaceAll("'", "&#39;");
}

// The absolute URL when the server knows its public name (public.base_url), else relative.
function link(thwonk, path, fallback) {
  try {
    return thwonk.url(path);
  } catch (e) {
    return fallback;
  }
}

const STYLE = `<style>
body { font: 16px/1.5 system-ui, sans-serif; max-width: 42rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
h1 { font-size: 1.6rem; } .meta { color: #666; font-size: 0.9rem; }
pre { white-space: pre-wrap; font: inherit; } ol { padding-left: 1.2rem; } li { margin: 0.4rem 0; }
</style>`;

function page(title, body) {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escape(title)}</title>${STYLE}</head>
<body>${body}</body></html>
`;
}

function indexPage(index, thwonk) {
  const items = index
    .slice()
    .reverse()
    .map(
      (p) =>
        `<li><a href="posts/${p.n}.html">${escape(p.subject)}</a> ` +
        `<span class="meta">by ${escape(p.author)}, ${escape(p.date.slice(0, 10))}</span></li>`,
    )
    .join("\n");
  return page(
    `Archive of ${thwonk.address}`,
    `<h1>Archive of ${escape(thwonk.address)}</h1>
<p class="meta">${index.length} post${index.length === 1 ? "" : "s"} · <a href="feed.xml">Atom feed</a></p>
<ol reversed>
${items}
</ol>`,
  );
}

function postPage(post, thwonk) {
  return page(
    post.subject,
    `<p><a href="../index.html">← ${escape(thwonk.address)}</a></p>
<h1>${escape(post.subject)}</h1>
<p class="meta">by ${escape(post.author)}, ${escape(post.date)}</p>
<pre>${escape(post.text)}</pre>`,
  );
}

function atomFeed(index, thwonk) {
  const home = link(thwonk, "", "./");
  const newest = index.slice(-FEED_ENTRIES).reverse();
  const entries = newest
    .map((p) => {
      const url = link(thwonk, `posts/${p.n}.html`, `posts/${p.n}.html`);
      return `  <entry>
    <title>${escape(p.subject)}</title>
    <link href="${escape(url)}"/>
    <id>${escape(url)}</id>
    <updated>${escape(p.date)}</updated>
    <author><name>${escape(p.author)}</name></author>
  </entry>`;
    })
    .join("\n");
  const updated = newest.length ? newest[0].date : new Date(thwonk.now()).toISOString();
  return `<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title>${escape(thwonk.address)}</title>
  <link href="${escape(home)}"/>
  <id>${escape(home)}</id>
  <updated>${escape(updated)}</updated>
${entries}
</feed>
`;
}
