"""Safe publishing: public copies of media, pseudonyms and text redaction, custody reports
and a static report site. Everything here reads the vault and records; the only thing it
writes to the vault is a signed event saying which public copy came from which original."""
