/* Layer-keyed JSON traces: the shipped Mixtral-8x7B MT-Bench traces (token
 * counts from their README, a cross-check against json-glib's JsonParser,
 * byte-identical re-export) and every malformed case naming its layer and
 * token. */
#include <json-glib/json-glib.h>

#include "trace-test-util.h"

static const struct
{
  const char *name;
  gsize tokens;
} shipped[] = {
  { "coding", 12138 },
  { "math", 10307 },
  { "humanities", 12414 },
  { "writing", 12622 },
};

static char *
shipped_path (const char *name)
{
  g_autofree char *rel = g_strdup_printf ("workloads/traces/mixtral-8x7b-mtbench/%s.json", name);
  return msim_test_path (rel);
}

START_TEST (test_shipped_traces)
{
  for (gsize i = 0; i < G_N_ELEMENTS (shipped); i++)
    {
      g_autofree char *path = shipped_path (shipped[i].name);
      GError *err = NULL;
      g_autoptr (MsimTrace) t = msim_trace_load (path, &err);
      ck_assert_msg (t != NULL, "%s", err ? err->message : "?");
      ck_assert_uint_eq (t->tokens, shipped[i].tokens);
      ck_assert_uint_eq (t->layers, 32);
      ck_assert_uint_eq (t->k, 2);
      ck_assert_uint_eq (t->experts, 8);
      ck_assert_int_eq (t->flags, MSIM_TRACE_NONE);
      /* Top-2 routing picks two different experts for every token.
       * (Counted, not asserted per cell: every Check assertion is a pipe
       * write in fork mode, which makes per-cell asserts the slowest part
       * of a suite.) */
      gsize same = 0;
      for (guint l = 0; l < t->layers; l++)
        for (gsize tok = 0; tok < t->tokens; tok++)
          same += msim_trace_row (t, tok, l)[0] == msim_trace_row (t, tok, l)[1];
      ck_assert_uint_eq (same, 0);
    }
  /* Spot values at both ends of coding.json. */
  g_autofree char *path = shipped_path ("coding");
  g_autoptr (MsimTrace) t = msim_trace_load (path, NULL);
  ck_assert_int_eq (msim_trace_expert (t, 0, 0, 0), 5);
  ck_assert_int_eq (msim_trace_expert (t, 0, 0, 1), 1);
  ck_assert_int_eq (msim_trace_expert (t, 1, 0, 0), 3);
  ck_assert_int_eq (msim_trace_expert (t, 1, 0, 1), 6);
  ck_assert_int_eq (msim_trace_expert (t, 12137, 31, 0), 2);
  ck_assert_int_eq (msim_trace_expert (t, 12137, 31, 1), 7);
}
END_TEST

/* Compares msim's reader with json-glib's DOM parser on @path. */
static void
cross_check_file (const char *path)
{
  g_autoptr (MsimTrace) t = msim_trace_load (path, NULL);
  ck_assert_ptr_nonnull (t);
  g_autoptr (JsonParser) parser = json_parser_new ();
  GError *err = NULL;
  ck_assert_msg (json_parser_load_from_file (parser, path, &err), "%s", err->message);
  JsonObject *root = json_node_get_object (json_parser_get_root (parser));
  ck_assert_uint_eq (json_object_get_size (root), t->layers);
  /* Counted, not asserted per cell: every Check assertion is a pipe write
   * in fork mode, which would dominate the test's run time. */
  gsize compared = 0, differ = 0;
  for (guint l = 0; l < t->layers; l++)
    {
      char key[16];
      g_snprintf (key, sizeof key, "%u", l);
      JsonArray *layer = json_object_get_array_member (root, key);
      ck_assert_ptr_nonnull (layer);
      ck_assert_uint_eq (json_array_get_length (layer), t->tokens);
      for (guint tok = 0; tok < t->tokens; tok++)
        {
          JsonArray *pair = json_array_get_array_element (layer, tok);
          differ += json_array_get_length (pair) != t->k;
          for (guint r = 0; r < t->k; r++, compared++)
            differ += json_array_get_int_element (pair, r) != msim_trace_expert (t, tok, l, r);
        }
    }
  ck_assert_uint_eq (compared, t->tokens * t->layers * t->k);
  ck_assert_uint_eq (differ, 0);
}

START_TEST (test_cross_check_json_glib)
{
  if (!g_getenv ("MSIM_UNDER_VALGRIND"))
    {
      for (gsize i = 0; i < G_N_ELEMENTS (shipped); i++)
        {
          g_autofree char *path = shipped_path (shipped[i].name);
          cross_check_file (path);
        }
      return;
    }
  /* json-glib's DOM costs about 25 s per shipped file under memcheck, so
   * there the comparison runs on the first 300 tokens of math.json
   * (written by our exporter, whose output is byte-identical in layout). */
  g_autofree char *path = shipped_path ("math");
  g_autoptr (MsimTrace) full = msim_trace_load (path, NULL);
  g_autoptr (MsimTrace) head = msim_trace_new (300, full->layers, full->k, full->experts, 0, NULL);
  for (guint l = 0; l < full->layers; l++)
    memcpy (msim_trace_row_mut (head, 0, l), msim_trace_row (full, 0, l),
            300 * full->k * sizeof (MsimExpertId));
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *small = g_build_filename (dir, "math-head.json", NULL);
  ck_assert (msim_trace_save (head, small, MSIM_TRACE_FORMAT_AUTO, NULL));
  cross_check_file (small);
  tt_rmtree (dir);
}
END_TEST

START_TEST (test_reexport_is_byte_identical)
{
  g_autofree char *dir = tt_tmpdir ();
  for (gsize i = 0; i < G_N_ELEMENTS (shipped); i++)
    {
      g_autofree char *path = shipped_path (shipped[i].name);
      g_autoptr (MsimTrace) t = msim_trace_load (path, NULL);
      g_autofree char *out = g_build_filename (dir, "again.json", NULL);
      ck_assert (msim_trace_save (t, out, MSIM_TRACE_FORMAT_AUTO, NULL));
      g_autofree char *a = NULL, *b = NULL;
      gsize alen = 0, blen = 0;
      ck_assert (g_file_get_contents (path, &a, &alen, NULL));
      ck_assert (g_file_get_contents (out, &b, &blen, NULL));
      ck_assert_uint_eq (alen, blen);
      ck_assert_msg (memcmp (a, b, alen) == 0, "%s differs after re-export", shipped[i].name);
    }
  tt_rmtree (dir);
}
END_TEST

START_TEST (test_layout_variants)
{
  g_autofree char *dir = tt_tmpdir ();
  /* Keys out of order and pretty-printed: the reader goes by key. */
  const char *text = "\xef\xbb\xbf{\n  \"1\": [[4, 0],\n        [2, 3]],\n"
                     "  \"0\": [ [1 ,2] , [3,0] ]\n}\n";
  g_autofree char *path = tt_write_str (dir, "pretty.json", text);
  GError *err = NULL;
  g_autoptr (MsimTrace) t = msim_trace_load (path, &err);
  ck_assert_msg (t != NULL, "%s", err ? err->message : "?");
  ck_assert_uint_eq (t->tokens, 2);
  ck_assert_uint_eq (t->layers, 2);
  ck_assert_uint_eq (t->experts, 5);
  ck_assert_int_eq (msim_trace_expert (t, 0, 0, 0), 1);
  ck_assert_int_eq (msim_trace_expert (t, 1, 0, 0), 3);
  ck_assert_int_eq (msim_trace_expert (t, 0, 1, 0), 4);
  ck_assert_int_eq (msim_trace_expert (t, 1, 1, 1), 3);
  /* Eleven layers: "10" sorts before "2" as text, not as a layer. */
  GString *s = g_string_new ("{");
  for (int l = 10; l >= 0; l--)
    g_string_append_printf (s, "%s\"%d\": [[%d]]", l == 10 ? "" : ", ", l, l);
  g_string_append (s, "}");
  g_autofree char *p11 = tt_write_str (dir, "eleven.json", s->str);
  g_string_free (s, TRUE);
  g_autoptr (MsimTrace) u = msim_trace_load (p11, &err);
  ck_assert_uint_eq (u->layers, 11);
  ck_assert_uint_eq (u->k, 1);
  for (int l = 0; l < 11; l++)
    ck_assert_int_eq (msim_trace_expert (u, 0, l, 0), l);
  tt_rmtree (dir);
}
END_TEST

/* Loads @text as DIR/bad.json expecting @code and a message holding the
 * path and every string of the NULL-terminated list. */
static void
expect_error (const char *dir, const char *text, int code, ...)
{
  g_autofree char *path = tt_write_str (dir, "bad.json", text);
  GError *err = tt_load_error (path);
  ck_assert_msg (err->code == code, "code %d: %s", err->code, err->message);
  ck_assert_msg (strstr (err->message, path) != NULL, "lacks the path: %s", err->message);
  va_list ap;
  va_start (ap, code);
  const char *want;
  while ((want = va_arg (ap, const char *)) != NULL)
    ck_assert_msg (strstr (err->message, want) != NULL, "lacks \"%s\": %s", want, err->message);
  va_end (ap);
  g_error_free (err);
}

START_TEST (test_malformed)
{
  g_autofree char *dir = tt_tmpdir ();
  expect_error (dir, "{\"0\": [[1, 2], [3, 4], [5, 6]], \"1\": [[1, 2], [3, 4]]}", MSIM_ERROR_INPUT,
                "byte 37", "layer 1 has 2 tokens but layer 0 has 3", "ragged", NULL);
  expect_error (dir, "{\"0\": [[1, 2]], \"2\": [[1, 2]]}", MSIM_ERROR_INPUT, "layer 1 is missing",
                "the largest is 2", NULL);
  expect_error (dir, "{\"1\": [[1, 2]]}", MSIM_ERROR_INPUT, "layer 0 is missing", NULL);
  expect_error (dir, "{\"0\": [[1, 2]], \"0\": [[1, 2]]}", MSIM_ERROR_INPUT, "byte 16",
                "layer 0 appears twice (first at byte 1)", NULL);
  expect_error (dir, "{\"0\": [[1, 2], [3, 4]], \"1\": [[1, 2], [3, 1.5]]}", MSIM_ERROR_INPUT,
                "byte 42", "layer 1, token 1", "'1.5' is not an integer expert id", NULL);
  expect_error (dir, "{\"0\": [[1, 2], [1e3, 4]]}", MSIM_ERROR_INPUT, "layer 0, token 1",
                "'1e3' is not an integer", NULL);
  expect_error (dir, "{\"0\": [[1, 2], [3, 4, 5]]}", MSIM_ERROR_INPUT, "byte 15",
                "layer 0, token 1", "more than 2 expert ids", NULL);
  expect_error (dir, "{\"0\": [[1, 2]], \"1\": [[3]]}", MSIM_ERROR_INPUT, "layer 1, token 0",
                "entry has 1 expert ids, expected 2", NULL);
  expect_error (dir, "{\"0\": [[1, 2], []]}", MSIM_ERROR_INPUT, "layer 0, token 1", "empty entry",
                NULL);
  expect_error (dir, "{\"0\": [[1, 2], [null, 2]]}", MSIM_ERROR_INPUT, "layer 0, token 1",
                "expected an integer expert id, found 'null'", NULL);
  expect_error (dir, "{\"0\": [[1, 2], [\"3\", 2]]}", MSIM_ERROR_INPUT, "layer 0, token 1",
                "found '\"3\"'", NULL);
  expect_error (dir, "{\"0\": [[1, 2], 7]}", MSIM_ERROR_INPUT, "layer 0, token 1",
                "expected an entry [e1, ..., ek]", NULL);
  expect_error (dir, "{\"0\": [[1, -2]]}", MSIM_ERROR_INPUT, "layer 0, token 0",
                "expert id -2 is negative", NULL);
  expect_error (dir, "{\"0\": [[1, 40000]]}", MSIM_ERROR_LIMIT, "layer 0, token 0",
                "expert id 40000 is above", NULL);
  expect_error (dir, "{\"0\": {\"a\": 1}}", MSIM_ERROR_INPUT, "layer 0",
                "expected an array of per-token entries", NULL);
  expect_error (dir, "{\"layer0\": [[1, 2]]}", MSIM_ERROR_INPUT,
                "key \"layer0\" is not a layer index", NULL);
  expect_error (dir, "{\"01\": [[1, 2]]}", MSIM_ERROR_INPUT, "key \"01\"", NULL);
  expect_error (dir, "{\"0\": [[1, 2]]} {}", MSIM_ERROR_INPUT, "byte 16",
                "unexpected data after the trace object", NULL);
  expect_error (dir, "{}", MSIM_ERROR_INPUT, "no layers", NULL);
  expect_error (dir, "{\"0\": []}", MSIM_ERROR_INPUT, "the layers have no tokens", NULL);
  expect_error (dir, "{\"0\" [[1]]}", MSIM_ERROR_INPUT, "expected ':' after layer key 0", NULL);
  expect_error (dir, "{\"0\": [[1, 2]] \"1\": [[1, 2]]}", MSIM_ERROR_INPUT,
                "after layer 0: expected ',' or '}'", NULL);
  /* Truncated in the middle of a layer; a pretty-printed file gets a line
   * and column too. */
  expect_error (dir, "{\n\"0\": [[1, 2],\n  [3, 4],\n  [5,", MSIM_ERROR_INPUT, "byte 31",
                "line 4, column 6", "layer 0, token 2", "found end of file", NULL);
  tt_rmtree (dir);
}
END_TEST

START_TEST (test_not_an_object)
{
  /* A top-level array is JSON but not this format; with an explicit format
   * the reader explains what it expected. */
  GError *err = NULL;
  const char *text = "[[1, 2]]";
  g_autoptr (MsimTrace) t
      = msim_trace_load_data (text, strlen (text), "arr.json", MSIM_TRACE_FORMAT_JSON, &err);
  ck_assert_ptr_null (t);
  tt_assert_error (err, MSIM_ERROR_INPUT, "arr.json: byte 0", "expected '{'", NULL);
  g_clear_error (&err);
}
END_TEST

static Suite *
json_suite (void)
{
  Suite *s = suite_create ("trace_json");
  struct
  {
    const char *name;
    const TTest *fn;
  } cases[] = {
    { "shipped", test_shipped_traces },
    { "cross_check", test_cross_check_json_glib },
    { "reexport", test_reexport_is_byte_identical },
    { "layout_variants", test_layout_variants },
    { "malformed", test_malformed },
    { "not_an_object", test_not_an_object },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      TCase *tc = tcase_create (cases[i].name);
      tcase_add_test (tc, cases[i].fn);
      suite_add_tcase (s, tc);
    }
  return s;
}

MSIM_CHECK_MAIN (json_suite)
