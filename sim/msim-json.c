#include "msim-json.h"

#include <string.h>

void
msim_json_fix_exponents (char *text)
{
  char *w = text;
  gboolean in_string = FALSE;
  for (const char *r = text; *r;)
    {
      char c = *r;
      if (in_string)
        {
          *w++ = *r++;
          if (c == '\\' && *r)
            *w++ = *r++;
          else if (c == '"')
            in_string = FALSE;
          continue;
        }
      if (c == '"')
        {
          in_string = TRUE;
          *w++ = *r++;
          continue;
        }
      /* An exponent: copy e, sign and digits, then skip a ".0" the
       * generator appended (a number never has a fraction after its
       * exponent). */
      if ((c == 'e' || c == 'E') && w > text && g_ascii_isdigit (w[-1]))
        {
          *w++ = *r++;
          if (*r == '+' || *r == '-')
            *w++ = *r++;
          while (g_ascii_isdigit (*r))
            *w++ = *r++;
          if (r[0] == '.' && r[1] == '0' && !g_ascii_isdigit (r[2]))
            r += 2;
          continue;
        }
      *w++ = *r++;
    }
  *w = '\0';
}

char *
msim_json_to_data (JsonNode *root, gboolean pretty)
{
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  json_generator_set_pretty (gen, pretty);
  json_generator_set_root (gen, root);
  char *text = json_generator_to_data (gen, NULL);
  msim_json_fix_exponents (text);
  return text;
}
