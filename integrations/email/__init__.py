"""The email channel's adapter: SMTP in, IMAP polling, parsing and threading, SMTP out (docs/subsystems/email.md)."""
