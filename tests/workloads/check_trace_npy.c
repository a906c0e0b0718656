/* NumPy .npy traces: files written by real NumPy (tests/workloads/data/npy,
 * see make-fixtures.py there), a hand-built matrix of every dtype x byte
 * order x memory order x rank x format version, the exporter's exact
 * bytes, and every way a file can be unreadable. */
#include "trace-test-util.h"

#define T 3
#define L 2
#define K 2

static void
restore_limit (void)
{
  msim_trace_set_memory_limit (MSIM_TRACE_DEFAULT_MEMORY_LIMIT);
}

/* ids[t, l, r] = base + 4 t + 2 l + r (3-D), ids[t, l] = base + 2 t + l
 * (2-D), as make-fixtures.py writes them. */
static gint64
value (gint64 base, gboolean three, gsize t, gsize l, gsize r)
{
  return three ? base + 4 * (gint64)t + 2 * (gint64)l + (gint64)r
               : base + 2 * (gint64)t + (gint64)l;
}

static void
assert_values (const MsimTrace *t, gint64 base, gboolean three, const char *what)
{
  ck_assert_msg (t->tokens == T && t->layers == L && t->k == (three ? K : 1u), "%s: shape", what);
  for (gsize tok = 0; tok < T; tok++)
    for (guint l = 0; l < L; l++)
      for (guint r = 0; r < t->k; r++)
        ck_assert_msg (msim_trace_expert (t, tok, l, r) == value (base, three, tok, l, r),
                       "%s: token %zu layer %u rank %u = %d, want %d", what, (size_t)tok, l, r,
                       msim_trace_expert (t, tok, l, r), (int)value (base, three, tok, l, r));
  ck_assert_uint_eq (t->experts, (guint)value (base, three, T - 1, L - 1, K - 1) + 1);
}

START_TEST (test_numpy_fixtures)
{
  const struct
  {
    const char *file;
    gint64 base;
    gboolean three;
  } cases[] = {
    { "i1-c-3d.npy", 100, TRUE },     { "u1-c-3d.npy", 200, TRUE },
    { "i2le-c-3d.npy", 300, TRUE },   { "i2be-c-3d.npy", 300, TRUE },
    { "u2be-f-3d.npy", 300, TRUE },   { "i4le-f-3d.npy", 1000, TRUE },
    { "i4be-f-3d.npy", 1000, TRUE },  { "u4le-c-2d.npy", 1000, FALSE },
    { "i8le-c-2d.npy", 1000, FALSE }, { "i8be-f-2d.npy", 1000, FALSE },
    { "u8be-c-3d.npy", 1000, TRUE },  { "i4le-c-3d-v2.npy", 0, TRUE },
    { "i4le-c-3d-v3.npy", 0, TRUE },  { "export-ref.npy", 0, TRUE },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *rel = g_build_filename ("tests/workloads/data/npy", cases[i].file, NULL);
      g_autofree char *path = msim_test_path (rel);
      GError *err = NULL;
      g_autoptr (MsimTrace) t = msim_trace_load (path, &err);
      ck_assert_msg (t != NULL, "%s: %s", cases[i].file, err ? err->message : "?");
      assert_values (t, cases[i].base, cases[i].three, cases[i].file);
    }
}
END_TEST

/* Encodes @v as a @size-byte integer in the given byte order. */
static void
put (guint8 *p, guint64 v, guint size, gboolean big)
{
  for (guint i = 0; i < size; i++)
    p[big ? size - 1 - i : i] = (guint8)(v >> (8 * i));
}

/* A .npy file from parts: the header dict is padded as NumPy pads it. */
static GByteArray *
build_npy (int major, const char *dict, const guint8 *data, gsize len)
{
  GByteArray *b = g_byte_array_new ();
  gsize pre = major == 1 ? 10 : 12;
  gsize hl = (pre + strlen (dict) + 1 + 63) / 64 * 64 - pre;
  guint8 p[12] = { 0x93, 'N', 'U', 'M', 'P', 'Y', (guint8)major, 0 };
  put (p + 8, hl, major == 1 ? 2 : 4, FALSE);
  g_byte_array_append (b, p, (guint)pre);
  g_byte_array_append (b, (const guint8 *)dict, (guint)strlen (dict));
  for (gsize i = strlen (dict) + 1; i < hl; i++)
    g_byte_array_append (b, (const guint8 *)" ", 1);
  g_byte_array_append (b, (const guint8 *)"\n", 1);
  if (len)
    g_byte_array_append (b, data, (guint)len);
  return b;
}

static char *
write_npy (const char *dir, const char *name, GByteArray *b)
{
  char *path = tt_write (dir, name, b->data, b->len);
  g_byte_array_unref (b);
  return path;
}

START_TEST (test_dtype_matrix)
{
  g_autofree char *dir = tt_tmpdir ();
  const char *descrs[] = { "|i1", "|u1", "<i2", ">i2", "<u2", ">u2", "<i4",
                           ">i4", "<u4", ">u4", "<i8", ">i8", "<u8", ">u8" };
  int n = 0;
  for (gsize d = 0; d < G_N_ELEMENTS (descrs); d++)
    for (int three = 0; three < 2; three++)
      for (int fortran = 0; fortran < 2; fortran++)
        {
          guint size = (guint)(descrs[d][2] - '0');
          gboolean big = descrs[d][0] == '>';
          /* Wide types get ids that need their upper byte, so a reader that
           * ignores the byte order or the element size reads wrong ids. */
          gint64 base = size == 1 ? 100 : 20000;
          gsize k = three ? K : 1;
          guint8 data[T * L * K * 8];
          for (gsize t = 0; t < T; t++)
            for (gsize l = 0; l < L; l++)
              for (gsize r = 0; r < k; r++)
                {
                  gsize idx = fortran ? t + T * (l + L * r) : (t * L + l) * k + r;
                  put (data + idx * size, (guint64)value (base, three, t, l, r), size, big);
                }
          int major = 1 + n % 3;
          g_autofree char *dict
              = g_strdup_printf ("{'descr': '%s', 'fortran_order': %s, 'shape': (%d, %d%s), }",
                                 descrs[d], fortran ? "True" : "False", T, L, three ? ", 2" : "");
          g_autofree char *name = g_strdup_printf ("m%d.npy", n++);
          g_autofree char *path
              = write_npy (dir, name, build_npy (major, dict, data, T * L * k * size));
          GError *err = NULL;
          g_autoptr (MsimTrace) tr = msim_trace_load (path, &err);
          ck_assert_msg (tr != NULL, "%s: %s", dict, err ? err->message : "?");
          assert_values (tr, base, three, dict);
        }
  ck_assert_int_eq (n, 56);
  tt_rmtree (dir);
}
END_TEST

START_TEST (test_export_bytes)
{
  /* Our writer and NumPy's produce the same file for the same array. */
  g_autoptr (MsimTrace) t = msim_trace_new (T, L, K, 12, 0, NULL);
  for (gsize tok = 0; tok < T; tok++)
    for (guint l = 0; l < L; l++)
      for (guint r = 0; r < K; r++)
        msim_trace_set_expert (t, tok, l, r, (int)value (0, TRUE, tok, l, r));
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *out = g_build_filename (dir, "out.npy", NULL);
  ck_assert (msim_trace_save (t, out, MSIM_TRACE_FORMAT_AUTO, NULL));
  g_autofree char *ref_path = msim_test_path ("tests/workloads/data/npy/export-ref.npy");
  g_autofree char *mine = NULL, *ref = NULL;
  gsize mine_len = 0, ref_len = 0;
  ck_assert (g_file_get_contents (out, &mine, &mine_len, NULL));
  ck_assert (g_file_get_contents (ref_path, &ref, &ref_len, NULL));
  ck_assert_uint_eq (mine_len, ref_len);
  ck_assert (memcmp (mine, ref, ref_len) == 0);
  /* And the layout is what the format says: 64-byte aligned data, int32
   * little-endian, token-major. */
  ck_assert_uint_eq (ref_len, 128 + T * L * K * 4);
  ck_assert_int_eq (mine[6], 1);
  ck_assert_int_eq (mine[127], '\n');
  const guint8 *d = (const guint8 *)mine + 128;
  ck_assert_int_eq (d[4 * 5], 5); /* token 1, layer 0, rank 1 */
  ck_assert_int_eq (d[4 * 11], 11);
  tt_rmtree (dir);
}
END_TEST

static const char *const good_dict
    = "{'descr': '<i4', 'fortran_order': False, 'shape': (3, 2, 2), }";

static GByteArray *
good_with_data (gsize len)
{
  guint8 data[64] = { 0 };
  for (gsize i = 0; i < 12; i++)
    put (data + 4 * i, i, 4, FALSE);
  return build_npy (1, good_dict, data, len);
}

/* Writes @b as DIR/NAME, loads it expecting an error with @code whose
 * message holds the path and every string of the NULL-terminated list. */
static void
expect_error (const char *dir, const char *name, GByteArray *b, int code, ...)
{
  g_autofree char *path = write_npy (dir, name, b);
  GError *err = tt_load_error (path);
  ck_assert_msg (err->code == code && strstr (err->message, path) != NULL
                     && strstr (err->message, "byte ") != NULL,
                 "%s: %s", name, err->message);
  va_list ap;
  va_start (ap, code);
  const char *want;
  while ((want = va_arg (ap, const char *)) != NULL)
    ck_assert_msg (strstr (err->message, want) != NULL, "%s: lacks \"%s\": %s", name, want,
                   err->message);
  va_end (ap);
  g_error_free (err);
}

static GByteArray *
dict_only (const char *dict, gsize data_bytes)
{
  guint8 zeros[64] = { 0 };
  return build_npy (1, dict, zeros, data_bytes);
}

START_TEST (test_malformed_hand_written)
{
  g_autofree char *dir = tt_tmpdir ();
  expect_error (dir, "trunc.npy", good_with_data (40), MSIM_ERROR_INPUT, "byte 168", "truncated",
                "needs 48 data bytes", NULL);
  expect_error (dir, "trailing.npy", good_with_data (52), MSIM_ERROR_INPUT, "byte 176",
                "does not match the data", NULL);
  GByteArray *b = good_with_data (48);
  b->data[8] = 0xff; /* header length 255 + 256 * 0 > file */
  b->data[9] = 0x01;
  expect_error (dir, "hlen.npy", b, MSIM_ERROR_INPUT, "byte 8", "runs past the end", NULL);
  b = g_byte_array_new ();
  g_byte_array_append (b, (const guint8 *)"\x93NUMPY\x01\x00\x76", 9);
  expect_error (dir, "pre.npy", b, MSIM_ERROR_INPUT, "truncated npy preamble", NULL);
  b = good_with_data (48);
  b->data[5] = 'X';
  expect_error (dir, "magic.npy", b, MSIM_ERROR_INPUT, "byte 0", "not a NumPy", NULL);
  b = good_with_data (48);
  b->data[6] = 4;
  expect_error (dir, "version.npy", b, MSIM_ERROR_INPUT, "byte 6", "version 4.0", NULL);

  expect_error (dir, "overflow.npy",
                dict_only ("{'descr': '<i4', 'fortran_order': False, 'shape': (1099511627776, "
                           "1099511627776, 1048576), }",
                           0),
                MSIM_ERROR_INPUT, "more than 2^64 bytes", NULL);
  expect_error (dir, "huge.npy",
                dict_only ("{'descr': '<i4', 'fortran_order': False, 'shape': (1000000000, 32, "
                           "2), }",
                           8),
                MSIM_ERROR_INPUT, "truncated", "256000000000 data bytes", NULL);
  expect_error (dir, "empty.npy",
                dict_only ("{'descr': '<i4', 'fortran_order': False, 'shape': (0, 2), }", 0),
                MSIM_ERROR_INPUT, "shape (0, 2) is empty", NULL);
  expect_error (dir, "scalar.npy",
                dict_only ("{'descr': '<i4', 'fortran_order': False, 'shape': (), }", 4),
                MSIM_ERROR_INPUT, "0 dimensions", NULL);
  expect_error (dir, "extra.npy",
                dict_only ("{'descr': '<i4', 'fortran_order': False, 'shape': (2, 2), "
                           "'extra': 1}",
                           16),
                MSIM_ERROR_INPUT, "unexpected key 'extra'", NULL);
  expect_error (dir, "noshape.npy", dict_only ("{'descr': '<i4', 'fortran_order': False}", 16),
                MSIM_ERROR_INPUT, "missing key 'shape'", NULL);
  expect_error (dir, "i3.npy",
                dict_only ("{'descr': '<i3', 'fortran_order': False, 'shape': (2, 2), }", 12),
                MSIM_ERROR_INPUT, "byte 20", "'<i3'", "1, 2, 4 or 8", NULL);
  expect_error (dir, "pipe.npy",
                dict_only ("{'descr': '|i2', 'fortran_order': False, 'shape': (2, 2), }", 8),
                MSIM_ERROR_INPUT, "only valid for 1-byte", NULL);
  expect_error (dir, "order.npy",
                dict_only ("{'descr': '<i2', 'fortran_order': yes, 'shape': (2, 2), }", 8),
                MSIM_ERROR_INPUT, "True or False", NULL);
  expect_error (dir, "syntax.npy",
                dict_only ("{'descr': '<i2' 'fortran_order': False, 'shape': (2, 2), }", 8),
                MSIM_ERROR_INPUT, "byte 26", "expected ',' or '}'", NULL);

  /* Bad values: the message names the cell and its byte. */
  guint8 data[16];
  const gint32 vals[4] = { 0, 1, -1, 2 }; /* [2, 2]: token 1, layer 0 is -1 */
  for (int i = 0; i < 4; i++)
    put (data + 4 * i, (guint64)(gint64)vals[i], 4, FALSE);
  expect_error (
      dir, "neg.npy",
      build_npy (1, "{'descr': '<i4', 'fortran_order': False, 'shape': (2, 2), }", data, 16),
      MSIM_ERROR_INPUT, "byte 136", "token 1, layer 0, rank 0", "-1 is negative", NULL);
  put (data + 4, 40000, 4, FALSE);
  put (data + 8, 0, 4, FALSE);
  expect_error (
      dir, "big.npy",
      build_npy (1, "{'descr': '<i4', 'fortran_order': True, 'shape': (2, 2), }", data, 16),
      MSIM_ERROR_LIMIT, "byte 132", "token 1, layer 0", "40000", "largest supported id", NULL);
  guint8 u64[8];
  put (u64, G_MAXUINT64, 8, TRUE);
  expect_error (
      dir, "u64.npy",
      build_npy (2, "{'descr': '>u8', 'fortran_order': False, 'shape': (1, 1), }", u64, 8),
      MSIM_ERROR_LIMIT, "byte 128", "largest supported id", NULL);
  tt_rmtree (dir);
}
END_TEST

START_TEST (test_malformed_numpy_written)
{
  const struct
  {
    const char *file, *want;
  } cases[] = {
    { "bad-f4.npy", "floating point" },
    { "bad-object.npy", "object array" },
    { "bad-4d.npy", "this one has 4 dimensions" },
    { "bad-1d.npy", "this one has 1 dimension" },
    { "bad-bool.npy", "boolean" },
    { "bad-structured.npy", "structured dtype" },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *rel = g_build_filename ("tests/workloads/data/npy", cases[i].file, NULL);
      g_autofree char *path = msim_test_path (rel);
      GError *err = tt_load_error (path);
      tt_assert_error (err, MSIM_ERROR_INPUT, path, "byte ", cases[i].want, NULL);
      g_error_free (err);
    }
}
END_TEST

START_TEST (test_memory_limit)
{
  g_autofree char *path = msim_test_path ("tests/workloads/data/npy/i4le-f-3d.npy");
  msim_trace_set_memory_limit (16); /* the 3 x 2 x 2 trace needs 24 bytes */
  GError *err = tt_load_error (path);
  tt_assert_error (err, MSIM_ERROR_LIMIT, path, "3 tokens x 2 layers x k=2", "24 bytes",
                   "memory limit of 16 bytes", NULL);
  g_error_free (err);
  msim_trace_set_memory_limit (24);
  g_autoptr (MsimTrace) t = msim_trace_load (path, NULL);
  ck_assert_ptr_nonnull (t);
  restore_limit ();
}
END_TEST

static Suite *
npy_suite (void)
{
  Suite *s = suite_create ("trace_npy");
  struct
  {
    const char *name;
    const TTest *fn;
  } cases[] = {
    { "numpy_fixtures", test_numpy_fixtures },
    { "dtype_matrix", test_dtype_matrix },
    { "export_bytes", test_export_bytes },
    { "malformed_hand_written", test_malformed_hand_written },
    { "malformed_numpy_written", test_malformed_numpy_written },
    { "memory_limit", test_memory_limit },
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

MSIM_CHECK_MAIN (npy_suite)
