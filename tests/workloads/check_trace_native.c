/* Native .mtr traces: layout, exact round trips, zero-copy mapping with
 * copy-on-write, and every corruption (truncation, flipped bits, lying
 * headers) reported with its byte offset. */
#include "trace-private.h"
#include "trace-test-util.h"

static void
restore_limit (void)
{
  msim_trace_set_memory_limit (MSIM_TRACE_DEFAULT_MEMORY_LIMIT);
}

/* A saved trace with weights and sequences: 50 tokens x 3 layers x k=2,
 * E=16, so ids = 600 B at 192, weights = 1200 B at 832, sequences = 200 B
 * at 2048, positions = 200 B at 2304, end 2560 (64-byte aligned). */
static char *
save_fixture (const char *dir, MsimTrace **out)
{
  MsimTrace *t = tt_random_trace (50, 3, 2, 16, MSIM_TRACE_WEIGHTS | MSIM_TRACE_SEQUENCES, 21);
  g_autofree char *path = g_build_filename (dir, "t.mtr", NULL);
  GError *err = NULL;
  ck_assert_msg (msim_trace_save (t, path, MSIM_TRACE_FORMAT_AUTO, &err), "%s",
                 err ? err->message : "?");
  *out = t;
  return g_steal_pointer (&path);
}

static GBytes *
read_all (const char *path)
{
  char *data = NULL;
  gsize len = 0;
  ck_assert (g_file_get_contents (path, &data, &len, NULL));
  return g_bytes_new_take (data, len);
}

START_TEST (test_layout_and_round_trip)
{
  g_autofree char *dir = tt_tmpdir ();
  MsimTrace *t0 = NULL;
  g_autofree char *path = save_fixture (dir, &t0);
  g_autoptr (MsimTrace) t = t0;
  g_autoptr (GBytes) bytes = read_all (path);
  gsize len = 0;
  const guint8 *d = g_bytes_get_data (bytes, &len);
  ck_assert_uint_eq (len, 2560);
  ck_assert (memcmp (d, "\x89MTRACE\n", 8) == 0);
  ck_assert_uint_eq (msim_load_le32 (d + 8), 1);     /* version */
  ck_assert_uint_eq (msim_load_le32 (d + 12), 160);  /* header bytes: 64 + 4 * 24 */
  ck_assert_uint_eq (msim_load_le64 (d + 16), 50);   /* tokens */
  ck_assert_uint_eq (msim_load_le32 (d + 24), 3);    /* layers */
  ck_assert_uint_eq (msim_load_le32 (d + 28), 2);    /* k */
  ck_assert_uint_eq (msim_load_le32 (d + 32), 16);   /* experts */
  ck_assert_uint_eq (msim_load_le32 (d + 36), 3);    /* flags */
  ck_assert_uint_eq (msim_load_le32 (d + 40), 1);    /* int16 ids */
  ck_assert_uint_eq (msim_load_le32 (d + 44), 4);    /* sections */
  ck_assert_uint_eq (msim_load_le64 (d + 48), 2560); /* file bytes */
  const guint64 offsets[4] = { 192, 832, 2048, 2304 }, sizes[4] = { 600, 1200, 200, 200 };
  for (int i = 0; i < 4; i++)
    {
      const guint8 *e = d + 64 + 24 * i;
      ck_assert_uint_eq (msim_load_le32 (e), (guint32)i + 1);
      ck_assert_uint_eq (msim_load_le64 (e + 8), offsets[i]);
      ck_assert_uint_eq (msim_load_le64 (e + 16), sizes[i]);
      ck_assert_uint_eq (msim_load_le32 (e + 4), msim_crc32_update (0, d + offsets[i], sizes[i]));
    }
  /* The ids section is the in-memory array, little-endian. */
  ck_assert_int_eq ((gint16)msim_load_le16 (d + 192 + 2 * (50 * 2 + 7 * 2 + 1)),
                    msim_trace_expert (t, 7, 1, 1));

  GError *err = NULL;
  g_autoptr (MsimTrace) back = msim_trace_load (path, &err);
  ck_assert_msg (back != NULL, "%s", err ? err->message : "?");
  ck_assert (msim_trace_equal (t, back));
  ck_assert (msim_trace_is_mapped (back));
  /* From memory the data is copied, with the same result. */
  g_autoptr (MsimTrace) mem
      = msim_trace_load_data (d, len, "mem.mtr", MSIM_TRACE_FORMAT_AUTO, &err);
  ck_assert (mem && !msim_trace_is_mapped (mem) && msim_trace_equal (t, mem));
  /* E survives even when the largest id is smaller. */
  g_autoptr (MsimTrace) small = tt_random_trace (4, 1, 1, 3, 0, 1);
  ck_assert (msim_trace_set_experts (small, 128, NULL));
  g_autofree char *p2 = g_build_filename (dir, "e.mtr", NULL);
  ck_assert (msim_trace_save (small, p2, MSIM_TRACE_FORMAT_AUTO, NULL));
  g_autoptr (MsimTrace) small2 = msim_trace_load (p2, NULL);
  ck_assert_uint_eq (small2->experts, 128);
  ck_assert (msim_trace_equal (small, small2));
  tt_rmtree (dir);
}
END_TEST

START_TEST (test_mapping_is_copy_on_write)
{
  g_autofree char *dir = tt_tmpdir ();
  MsimTrace *t0 = NULL;
  g_autofree char *path = save_fixture (dir, &t0);
  g_autoptr (MsimTrace) t = t0;
  g_autoptr (GBytes) before = read_all (path);
  g_chmod (path, 0444); /* read-only files load too */
  g_autoptr (MsimTrace) m = msim_trace_load (path, NULL);
  ck_assert (m && msim_trace_is_mapped (m));
  int old = msim_trace_expert (m, 3, 2, 1);
  int repl = (old + 1) % 16;
  msim_trace_set_expert (m, 3, 2, 1, repl);
  msim_trace_set_weight (m, 3, 2, 1, 42.0f);
  msim_trace_set_sequence (m, 3, 77, 78);
  ck_assert_int_eq (msim_trace_expert (m, 3, 2, 1), repl);
  g_autoptr (GBytes) after = read_all (path);
  ck_assert (g_bytes_equal (before, after));
  g_autoptr (MsimTrace) again = msim_trace_load (path, NULL);
  ck_assert_int_eq (msim_trace_expert (again, 3, 2, 1), old);
  ck_assert (msim_trace_equal (again, t));
  /* Saving the edited mapped trace over its own file works (the mapping
   * keeps the old inode alive) and writes the edit. */
  g_chmod (path, 0644);
  ck_assert (msim_trace_save (m, path, MSIM_TRACE_FORMAT_AUTO, NULL));
  g_autoptr (MsimTrace) edited = msim_trace_load (path, NULL);
  ck_assert (msim_trace_equal (edited, m));
  ck_assert_uint_eq (msim_trace_sequence (edited, 3), 77);
  /* The mapping does not count against the allocation limit. */
  msim_trace_set_memory_limit (64);
  g_autoptr (MsimTrace) limited = msim_trace_load (path, NULL);
  ck_assert_ptr_nonnull (limited);
  restore_limit ();
  tt_rmtree (dir);
}
END_TEST

/* Writes @data as DIR/bad.mtr, loads it, checks the error. */
static void
expect_error (const char *dir, const guint8 *data, gsize len, const char *want1, const char *want2)
{
  g_autofree char *path = tt_write (dir, "bad.mtr", data, len);
  GError *err = tt_load_error (path);
  tt_assert_error (err, MSIM_ERROR_INPUT, path, want1, want2, NULL);
  g_error_free (err);
}

/* Rewrites the header CRC so that only the deliberate lie remains. */
static void
fix_header_crc (guint8 *d)
{
  guint32 hb = msim_load_le32 (d + 12);
  msim_store_le32 (d + 60, 0);
  msim_store_le32 (d + 60, msim_crc32_update (0, d, hb));
}

START_TEST (test_corruption)
{
  g_autofree char *dir = tt_tmpdir ();
  MsimTrace *t0 = NULL;
  g_autofree char *path = save_fixture (dir, &t0);
  g_autoptr (MsimTrace) t = t0;
  g_autoptr (GBytes) bytes = read_all (path);
  gsize len = 0;
  const guint8 *orig = g_bytes_get_data (bytes, &len);
  g_autofree guint8 *d = g_memdup2 (orig, len);
#define RESET() memcpy (d, orig, len)

  /* Truncation anywhere. */
  expect_error (dir, d, 40, "byte 40", "truncated");
  expect_error (dir, d, 100, "byte 100", "truncated");
  expect_error (dir, d, 1000, "byte 1000", "truncated: the header records 2560 bytes");
  expect_error (dir, d, len - 1, "byte 2559", "truncated");
  /* Trailing garbage. */
  g_autofree guint8 *longer = g_malloc0 (len + 5);
  memcpy (longer, orig, len);
  expect_error (dir, longer, len + 5, "byte 2560", "5 unexpected bytes");

  /* Flipped bits: each section names itself. */
  const struct
  {
    gsize at;
    const char *section;
  } flips[] = { { 192 + 32, "byte 192: section 'ids'" },
                { 832 + 999, "byte 832: section 'weights'" },
                { 2048 + 5, "byte 2048: section 'sequences'" },
                { 2304 + 199, "byte 2304: section 'positions'" } };
  for (gsize i = 0; i < G_N_ELEMENTS (flips); i++)
    {
      RESET ();
      d[flips[i].at] ^= (i == 0) ? 0x01 : 0x40; /* ids stay in range: CRC catches it */
      expect_error (dir, d, len, flips[i].section, "checksum mismatch");
    }
  RESET ();
  d[20] ^= 1; /* tokens */
  expect_error (dir, d, len, "byte 60", "header checksum mismatch");
  RESET ();
  d[1] = 'X';
  expect_error (dir, d, len, "byte 0", "not a moesim .mtr trace");

  /* Headers that lie with a valid checksum. */
  RESET ();
  msim_store_le32 (d + 8, 2);
  fix_header_crc (d);
  expect_error (dir, d, len, "byte 8", "format version 2");
  RESET ();
  msim_store_le64 (d + 16, 51); /* one more token than the data has */
  fix_header_crc (d);
  expect_error (dir, d, len, "byte 64", "the dimensions imply 'ids' with 612");
  RESET ();
  msim_store_le32 (d + 36, 0x13);
  fix_header_crc (d);
  expect_error (dir, d, len, "byte 36", "unknown flag bits 0x10");
  RESET ();
  msim_store_le32 (d + 40, 2);
  fix_header_crc (d);
  expect_error (dir, d, len, "byte 40", "dtype 2");
  RESET ();
  msim_store_le64 (d + 64 + 24 + 8, 800); /* weights overlap the ids */
  fix_header_crc (d);
  expect_error (dir, d, len, "byte 96", "overlaps");
  RESET ();
  msim_store_le32 (d + 32, 4); /* E = 4 but ids go up to 15 */
  fix_header_crc (d);
  {
    g_autofree char *p = tt_write (dir, "bad.mtr", d, len);
    GError *err = tt_load_error (p);
    tt_assert_error (err, MSIM_ERROR_INPUT, p, "byte 192: token 0, layer 0, rank 0",
                     "outside [0, 4)", NULL);
    g_error_free (err);
  }
  /* An id out of range with a matching section CRC. */
  RESET ();
  msim_store_le32 (d + 192, 0xffffffffu); /* token 0, layer 0: -1, -1 */
  msim_store_le32 (d + 64 + 4, msim_crc32_update (0, d + 192, 600));
  fix_header_crc (d);
  expect_error (dir, d, len, "byte 192: token 0, layer 0, rank 0", "expert id -1");
#undef RESET
  tt_rmtree (dir);
}
END_TEST

static Suite *
native_suite (void)
{
  Suite *s = suite_create ("trace_native");
  struct
  {
    const char *name;
    const TTest *fn;
  } cases[] = {
    { "layout", test_layout_and_round_trip },
    { "copy_on_write", test_mapping_is_copy_on_write },
    { "corruption", test_corruption },
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

MSIM_CHECK_MAIN (native_suite)
