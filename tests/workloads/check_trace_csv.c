/* CSV traces: rows in any order, optional columns, line endings, the
 * writer's exact text, and every malformed case with its line number. */
#include "trace-test-util.h"

static void
restore_limit (void)
{
  msim_trace_set_memory_limit (MSIM_TRACE_DEFAULT_MEMORY_LIMIT);
}

static MsimTrace *
load_text (const char *dir, const char *name, const char *text, GError **err)
{
  g_autofree char *path = tt_write_str (dir, name, text);
  return msim_trace_load (path, err);
}

START_TEST (test_any_order_and_layout)
{
  g_autofree char *dir = tt_tmpdir ();
  /* 2 tokens x 2 layers x k=2, shuffled, CRLF, padding, a blank line. */
  const char *text = "token, layer ,rank,expert\r\n"
                     "1,1,1,0\r\n"
                     "0,0,0,3\r\n"
                     " 1 ,0,1, 2\r\n"
                     "\r\n"
                     "0,1,1,5\r\n"
                     "1,0,0,4\r\n"
                     "0,0,1,1\r\n"
                     "0,1,0,6\r\n"
                     "1,1,0,7";
  GError *err = NULL;
  g_autoptr (MsimTrace) t = load_text (dir, "shuffled.csv", text, &err);
  ck_assert_msg (t != NULL, "%s", err ? err->message : "?");
  ck_assert_uint_eq (t->tokens, 2);
  ck_assert_uint_eq (t->layers, 2);
  ck_assert_uint_eq (t->k, 2);
  ck_assert_uint_eq (t->experts, 8);
  ck_assert_int_eq (t->flags, MSIM_TRACE_NONE);
  const int want[2][2][2] = { { { 3, 1 }, { 6, 5 } }, { { 4, 2 }, { 7, 0 } } };
  for (int tok = 0; tok < 2; tok++)
    for (int l = 0; l < 2; l++)
      for (int r = 0; r < 2; r++)
        ck_assert_int_eq (msim_trace_expert (t, tok, l, r), want[tok][l][r]);
  tt_rmtree (dir);
}
END_TEST

START_TEST (test_optional_columns)
{
  g_autofree char *dir = tt_tmpdir ();
  const char *text = "token,layer,rank,expert,position,weight,sequence\n"
                     "0,0,0,1,4,0.75,3\n"
                     "0,0,1,0,4,0.25,3\n"
                     "1,0,0,0,0,1e-3,8\n"
                     "1,0,1,1,0,0.999,8\n";
  GError *err = NULL;
  g_autoptr (MsimTrace) t = load_text (dir, "opt.csv", text, &err);
  ck_assert_msg (t != NULL, "%s", err ? err->message : "?");
  ck_assert_int_eq (t->flags, MSIM_TRACE_WEIGHTS | MSIM_TRACE_SEQUENCES);
  ck_assert (msim_trace_weight (t, 0, 0, 0) == 0.75f);
  ck_assert (msim_trace_weight (t, 1, 0, 0) == 1e-3f);
  ck_assert (msim_trace_weight (t, 1, 0, 1) == 0.999f);
  ck_assert_uint_eq (msim_trace_sequence (t, 0), 3);
  ck_assert_uint_eq (msim_trace_position (t, 0), 4);
  ck_assert_uint_eq (msim_trace_sequence (t, 1), 8);
  ck_assert_uint_eq (msim_trace_position (t, 1), 0);
  tt_rmtree (dir);
}
END_TEST

START_TEST (test_writer_text)
{
  g_autofree char *dir = tt_tmpdir ();
  g_autoptr (MsimTrace) t = msim_trace_new (2, 1, 2, 4, MSIM_TRACE_WEIGHTS, NULL);
  const int ids[2][2] = { { 3, 0 }, { 1, 2 } };
  const float w[2][2] = { { 0.1f, 0.9f }, { 1.0f / 3.0f, 2.0f / 3.0f } };
  for (int tok = 0; tok < 2; tok++)
    for (int r = 0; r < 2; r++)
      {
        msim_trace_set_expert (t, tok, 0, r, ids[tok][r]);
        msim_trace_set_weight (t, tok, 0, r, w[tok][r]);
      }
  g_autofree char *path = g_build_filename (dir, "w.csv", NULL);
  ck_assert (msim_trace_save (t, path, MSIM_TRACE_FORMAT_AUTO, NULL));
  g_autofree char *text = NULL;
  ck_assert (g_file_get_contents (path, &text, NULL, NULL));
  ck_assert_str_eq (text, "token,layer,rank,expert,weight\n"
                          "0,0,0,3,0.100000001\n"
                          "0,0,1,0,0.899999976\n"
                          "1,0,0,1,0.333333343\n"
                          "1,0,1,2,0.666666687\n");
  g_autoptr (MsimTrace) back = msim_trace_load (path, NULL);
  ck_assert (msim_trace_equal (t, back));
  tt_rmtree (dir);
}
END_TEST

/* Loads @text as DIR/bad.csv expecting @code and a message holding
 * "PATH:LINE:" (when @line > 0) and every string of the list. */
static void
expect_error (const char *dir, const char *text, int code, int line, ...)
{
  g_autofree char *path = tt_write_str (dir, "bad.csv", text);
  GError *err = tt_load_error (path);
  g_autofree char *where
      = line > 0 ? g_strdup_printf ("%s:%d: ", path, line) : g_strdup_printf ("%s: ", path);
  ck_assert_msg (err->code == code, "code %d: %s", err->code, err->message);
  ck_assert_msg (strstr (err->message, where) != NULL, "lacks \"%s\": %s", where, err->message);
  va_list ap;
  va_start (ap, line);
  const char *want;
  while ((want = va_arg (ap, const char *)) != NULL)
    ck_assert_msg (strstr (err->message, want) != NULL, "lacks \"%s\": %s", want, err->message);
  va_end (ap);
  g_error_free (err);
}

START_TEST (test_malformed)
{
  g_autofree char *dir = tt_tmpdir ();
  const char *hdr = "token,layer,rank,expert\n";
  expect_error (dir, "0,0,0,1\n", MSIM_ERROR_INPUT, 1, "expected the header", NULL);
  expect_error (dir, "token,layer,expert,rank\n0,0,0,1\n", MSIM_ERROR_INPUT, 1,
                "column 3 is 'expert'", NULL);
  expect_error (dir, "token,layer,rank,expert,gpu\n", MSIM_ERROR_INPUT, 1, "column 5 is 'gpu'",
                NULL);
  expect_error (dir, "token,layer,rank,expert,sequence\n", MSIM_ERROR_INPUT, 1,
                "'sequence' and 'position' come together", NULL);
  expect_error (dir, "token,layer,rank,expert,weight,weight\n", MSIM_ERROR_INPUT, 1,
                "'weight' appears twice", NULL);
  expect_error (dir, hdr, MSIM_ERROR_INPUT, 0, "no data rows", NULL);

  g_autofree char *missing_cell = g_strconcat (hdr, "0,0,0,1\n0,0,1\n", NULL);
  expect_error (dir, missing_cell, MSIM_ERROR_INPUT, 3, "expected 4 comma-separated fields",
                "found 3", NULL);
  g_autofree char *empty_cell = g_strconcat (hdr, "0,0,0,1\n0,0,1,\n", NULL);
  expect_error (dir, empty_cell, MSIM_ERROR_INPUT, 3, "column 'expert' is empty", NULL);
  g_autofree char *too_many = g_strconcat (hdr, "0,0,0,1,7\n", NULL);
  expect_error (dir, too_many, MSIM_ERROR_INPUT, 2, "found 5", NULL);
  g_autofree char *text_cell = g_strconcat (hdr, "0,0,0,1\n0,0,1,2\n1,0,0,abc\n", NULL);
  expect_error (dir, text_cell, MSIM_ERROR_INPUT, 4, "column 'expert': 'abc' is not an integer",
                NULL);
  g_autofree char *float_cell = g_strconcat (hdr, "0,0.5,0,1\n", NULL);
  expect_error (dir, float_cell, MSIM_ERROR_INPUT, 2, "column 'layer': '0.5' is not an integer",
                NULL);
  g_autofree char *negative = g_strconcat (hdr, "0,0,0,1\n1,0,0,-1\n", NULL);
  expect_error (dir, negative, MSIM_ERROR_INPUT, 3, "column 'expert': -1 is negative", NULL);
  g_autofree char *huge_id = g_strconcat (hdr, "0,0,0,32768\n", NULL);
  expect_error (dir, huge_id, MSIM_ERROR_LIMIT, 2, "expert id 32768", NULL);
  g_autofree char *dup = g_strconcat (hdr, "0,0,0,1\n0,1,0,2\n1,0,0,3\n1,1,0,4\n0,1,0,5\n", NULL);
  expect_error (dir, dup, MSIM_ERROR_INPUT, 6, "token 0, layer 1, rank 0 is given twice",
                "first at line 3", NULL);
  g_autofree char *gap = g_strconcat (hdr, "0,0,0,1\n0,0,1,2\n1,0,0,3\n2,0,0,4\n2,0,1,5\n", NULL);
  expect_error (dir, gap, MSIM_ERROR_INPUT, 0, "token 1, layer 0, rank 1 has no row",
                "3 tokens x 1 layers x k=2", NULL);

  const char *whdr = "token,layer,rank,expert,weight\n";
  g_autofree char *bad_w = g_strconcat (whdr, "0,0,0,1,0.5\n1,0,0,1,nan\n", NULL);
  expect_error (dir, bad_w, MSIM_ERROR_INPUT, 3, "'nan' is not a finite number", NULL);
  g_autofree char *text_w = g_strconcat (whdr, "0,0,0,1,heavy\n", NULL);
  expect_error (dir, text_w, MSIM_ERROR_INPUT, 2, "'heavy' is not a finite number", NULL);
  const char *shdr = "token,layer,rank,expert,sequence,position\n";
  g_autofree char *bad_seq = g_strconcat (shdr, "0,0,0,1,0,0\n0,1,0,1,0,0\n0,2,0,1,1,0\n", NULL);
  expect_error (dir, bad_seq, MSIM_ERROR_INPUT, 4, "token 0 has sequence 1 position 0 here",
                "sequence 0 position 0 on an earlier row", NULL);

  /* A typo'd token id would declare a huge trace: refused before
   * allocating, pointing at the line. */
  g_autofree char *typo = g_strconcat (hdr, "0,0,0,1\n4000000000000,0,0,1\n1,0,0,1\n", NULL);
  expect_error (dir, typo, MSIM_ERROR_LIMIT, 0, "token 4000000000000 at line 3", "memory limit",
                NULL);
  tt_rmtree (dir);
}
END_TEST

static Suite *
csv_suite (void)
{
  Suite *s = suite_create ("trace_csv");
  struct
  {
    const char *name;
    const TTest *fn;
  } cases[] = {
    { "any_order", test_any_order_and_layout },
    { "optional_columns", test_optional_columns },
    { "writer_text", test_writer_text },
    { "malformed", test_malformed },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      TCase *tc = tcase_create (cases[i].name);
      tcase_add_checked_fixture (tc, NULL, restore_limit);
      tcase_add_test (tc, cases[i].fn);
      suite_add_tcase (s, tc);
    }
  return s;
}

MSIM_CHECK_MAIN (csv_suite)
