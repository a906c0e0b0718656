#pragma once

#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/*
 * Serialises @root like json_generator_to_data(), but always valid JSON.
 *
 * json-glib 1.6 (Debian 12) prints a double by appending ".0" when the
 * shortest form has no decimal point, so 1e-08 comes out as "1e-08.0",
 * which no JSON parser accepts.  This writes the generator's text and drops
 * that ".0" after an exponent, outside strings.  Every JSON file moesim
 * writes goes through here. (transfer full)
 */
char *msim_json_to_data (JsonNode *root, gboolean pretty);

/* The repair alone, in place, on generator output; exposed for tests. */
void msim_json_fix_exponents (char *text);

G_END_DECLS
