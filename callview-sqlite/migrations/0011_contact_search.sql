-- callview: a trigram index of what a search (`q=`) reads on contacts
-- (issue 17).
--
-- `contact_search` is an FTS5 table with the trigram tokenizer over the
-- contacts' display name, formatted number, phone key, company, notes and
-- tags (their JSON text), its content read from `contacts` itself (an
-- external-content table keyed by `contacts.id`: no copy of the text). A
-- search whose words are three characters or more first asks it for the
-- contacts holding them anywhere (case-insensitively), then applies the
-- exact conditions to those few (queries.rs, conversation_filter); a
-- shorter word, or one with a character JSON escapes, reads every
-- contact as before. The triggers keep it in step with every write.

CREATE VIRTUAL TABLE IF NOT EXISTS contact_search USING fts5 (
    display_name, formatted_number, phone_number, company_name, notes, tags,
    content = 'contacts', content_rowid = 'id', tokenize = 'trigram'
);
INSERT INTO contact_search (contact_search) VALUES ('rebuild');

CREATE TRIGGER IF NOT EXISTS contact_search_insert AFTER INSERT ON contacts
BEGIN
    INSERT INTO contact_search (rowid, display_name, formatted_number, phone_number,
                                company_name, notes, tags)
    VALUES (NEW.id, NEW.display_name, NEW.formatted_number, NEW.phone_number,
            NEW.company_name, NEW.notes, NEW.tags);
END;

CREATE TRIGGER IF NOT EXISTS contact_search_delete AFTER DELETE ON contacts
BEGIN
    INSERT INTO contact_search (contact_search, rowid, display_name, formatted_number,
                                phone_number, company_name, notes, tags)
    VALUES ('delete', OLD.id, OLD.display_name, OLD.formatted_number, OLD.phone_number,
            OLD.company_name, OLD.notes, OLD.tags);
END;

CREATE TRIGGER IF NOT EXISTS contact_search_update
AFTER UPDATE OF id, display_name, formatted_number, phone_number, company_name, notes, tags
ON contacts
BEGIN
    INSERT INTO contact_search (contact_search, rowid, display_name, formatted_number,
                                phone_number, company_name, notes, tags)
    VALUES ('delete', OLD.id, OLD.display_name, OLD.formatted_number, OLD.phone_number,
            OLD.company_name, OLD.notes, OLD.tags);
    INSERT INTO contact_search (rowid, display_name, formatted_number, phone_number,
                                company_name, notes, tags)
    VALUES (NEW.id, NEW.display_name, NEW.formatted_number, NEW.phone_number,
            NEW.company_name, NEW.notes, NEW.tags);
END;
