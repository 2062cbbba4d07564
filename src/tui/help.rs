//! The text of the help window (`?`): keys, marks, and short answers to the
//! questions operators ask during an incident. `{marks}` is replaced by the
//! marks of the current theme (Unicode or `--ascii`).

/// Help text; kept short enough to read at 80x24 with little scrolling.
pub const HELP: &str = "\
Keys
  Enter  continue / take the highlighted choice   1-9  pick a choice
  b, Backspace  back one step     r  re-run this step's checks
  Esc    stop running checks (recorded inconclusive) / close a window
  ↑↓ PgUp PgDn  scroll evidence (mouse wheel too; Shift+drag selects text)
  t  ticket   g  whole guidance   n  note (goes into the ticket)   q  quit
  /  search the evidence; n N next/previous match; Esc clears the search
  m  map: client, CDN/LB, front server, route, upstream; each hop marked
  w  watch: re-probe the URL every 2s (+/- change), status, latency and the
     access log's 5xx per minute; RECOVERED after 3 answers following a 5xx
  Actions: y runs a reversible one; type the name + Enter for others.
  Ticket: w writes it to a file, y copies it (OSC 52). Sessions are saved:
  triage502 --resume lists them to continue after a crash or an SSH drop.

Marks
  {marks}

Is a 502 my fault?
  The proxy in front (nginx, Apache, a CDN or load balancer) got no valid
  answer from the application behind it. It is almost always the app, its
  process manager or its config on the server, not visitors or the network.
Was I hacked?
  Very unlikely: a 502 is a crash, an overload or a misconfiguration. Only
  suspect an attack if the findings show unknown changes or a flood.
Is it permanent?
  No. A 502 lasts until the upstream answers again (a restart, more capacity
  or a config fix); no data is lost by the 502 itself.
When to contact the host?
  When a finding points outside your control (their proxy, CDN, the machine
  itself), when the walk ends in \"escalate\", or when nothing is found.
  Send the ticket (t) so they start from the evidence.";
