/* MsimTrace: construction, accessors, limits, validation, format
 * detection, atomic saving and exact round trips through every format. */
#include <math.h>

#include "trace-private.h"
#include "trace-test-util.h"

static void
restore_limit (void)
{
  msim_trace_set_memory_limit (MSIM_TRACE_DEFAULT_MEMORY_LIMIT);
}

START_TEST (test_new_and_accessors)
{
  GError *err = NULL;
  g_autoptr (MsimTrace) t
      = msim_trace_new (4, 3, 2, 8, MSIM_TRACE_WEIGHTS | MSIM_TRACE_SEQUENCES, &err);
  ck_assert_ptr_nonnull (t);
  ck_assert_uint_eq (t->tokens, 4);
  ck_assert_uint_eq (t->layers, 3);
  ck_assert_uint_eq (t->k, 2);
  ck_assert_uint_eq (t->experts, 8);
  ck_assert (!msim_trace_is_mapped (t));
  /* Fresh cells are unset (-1) and validation says where. */
  ck_assert_int_eq (msim_trace_expert (t, 3, 2, 1), -1);
  ck_assert_int_eq (msim_trace_max_expert (t), -1);
  ck_assert (!msim_trace_validate (t, "gen", &err));
  tt_assert_error (err, MSIM_ERROR_INPUT, "gen: token 0, layer 0, rank 0", "negative", NULL);
  g_clear_error (&err);
  /* Defaults of the optional arrays. */
  ck_assert (msim_trace_weight (t, 1, 1, 1) == 0.0f);
  ck_assert_uint_eq (msim_trace_sequence (t, 3), 0);
  ck_assert_uint_eq (msim_trace_position (t, 3), 3);

  for (gsize tok = 0; tok < 4; tok++)
    for (guint l = 0; l < 3; l++)
      for (guint r = 0; r < 2; r++)
        {
          msim_trace_set_expert (t, tok, l, r, (int)((tok + 2 * l + 3 * r) % 8));
          msim_trace_set_weight (t, tok, l, r, (float)(tok * 100 + l * 10 + r));
        }
  msim_trace_set_sequence (t, 2, 9, 0);
  ck_assert (msim_trace_validate (t, "gen", NULL));
  ck_assert_int_eq (msim_trace_expert (t, 3, 2, 1), (3 + 4 + 3) % 8);
  /* Row and layer views agree with the scalar accessor (layer-major). */
  const MsimExpertId *row = msim_trace_row (t, 2, 1);
  ck_assert_int_eq (row[0], (2 + 2) % 8);
  ck_assert_int_eq (row[1], (2 + 2 + 3) % 8);
  const MsimExpertId *layer1 = msim_trace_layer_ids (t, 1);
  ck_assert_ptr_eq (layer1 + 2 * 2, row);
  ck_assert_ptr_eq (msim_trace_row (t, 0, 1), msim_trace_row (t, 3, 0) + 2);
  ck_assert (msim_trace_weight (t, 3, 2, 1) == 321.0f);
  const float *wrow = msim_trace_weight_row (t, 3, 2);
  ck_assert (wrow != NULL && wrow[0] == 320.0f);
  ck_assert_uint_eq (msim_trace_sequence (t, 2), 9);
  ck_assert_uint_eq (msim_trace_position (t, 2), 0);
  ck_assert_int_eq (msim_trace_max_expert (t), 7);

  /* Without weights the accessor reports an even split. */
  g_autoptr (MsimTrace) plain = msim_trace_new (1, 1, 4, 8, MSIM_TRACE_NONE, NULL);
  ck_assert_ptr_null (msim_trace_weight_row (plain, 0, 0));
  ck_assert (msim_trace_weight (plain, 0, 0, 3) == 0.25f);
}
END_TEST

START_TEST (test_bad_shapes)
{
  GError *err = NULL;
  ck_assert_ptr_null (msim_trace_new (0, 3, 2, 8, 0, &err));
  tt_assert_error (err, MSIM_ERROR_INPUT, "empty trace", NULL);
  g_clear_error (&err);
  ck_assert_ptr_null (msim_trace_new (3, 3, 2, 0, 0, &err));
  tt_assert_error (err, MSIM_ERROR_INPUT, "0 experts", NULL);
  g_clear_error (&err);
  ck_assert_ptr_null (msim_trace_new (3, 3, 2, 40000, 0, &err));
  tt_assert_error (err, MSIM_ERROR_LIMIT, "40000 experts", "1..32768", NULL);
  g_clear_error (&err);
  g_autoptr (MsimTrace) t = msim_trace_new (1, 1, 1, MSIM_TRACE_MAX_EXPERTS, 0, &err);
  ck_assert_ptr_nonnull (t);
  msim_trace_set_expert (t, 0, 0, 0, 32767);
  ck_assert_int_eq (msim_trace_expert (t, 0, 0, 0), 32767);
  ck_assert (msim_trace_validate (t, "max", NULL));
}
END_TEST

START_TEST (test_memory_limit)
{
  guint64 bytes = 0;
  ck_assert (msim_trace_bytes_needed (10, 2, 3, MSIM_TRACE_WEIGHTS | MSIM_TRACE_SEQUENCES, &bytes));
  ck_assert_uint_eq (bytes, 60 * 2 + 60 * 4 + 10 * 8);
  ck_assert (msim_trace_bytes_needed (10, 2, 3, 0, &bytes));
  ck_assert_uint_eq (bytes, 120);
  ck_assert (!msim_trace_bytes_needed (G_GUINT64_CONSTANT (1) << 40, 1 << 20, 1 << 10, 0, &bytes));
  ck_assert_uint_eq (msim_trace_get_memory_limit (), G_GUINT64_CONSTANT (8) << 30);

  GError *err = NULL;
  /* Over the default 8 GiB: rejected before allocating anything. */
  ck_assert_ptr_null (msim_trace_new ((gsize)1 << 32, 32, 2, 8, 0, &err));
  tt_assert_error (err, MSIM_ERROR_LIMIT, "4294967296 tokens x 32 layers x k=2", "512.0 GiB",
                   "memory limit of 8.0 GiB", NULL);
  g_clear_error (&err);
  /* A product that overflows 64 bits is a limit error, not a wrap-around. */
  ck_assert_ptr_null (msim_trace_new (G_MAXSIZE / 2, G_MAXUINT, 2, 8, 0, &err));
  tt_assert_error (err, MSIM_ERROR_LIMIT, "more than 2^64 bytes", NULL);
  g_clear_error (&err);

  msim_trace_set_memory_limit (1000);
  ck_assert_uint_eq (msim_trace_get_memory_limit (), 1000);
  g_autoptr (MsimTrace) fits = msim_trace_new (500, 1, 1, 8, 0, &err); /* exactly 1000 bytes */
  ck_assert_ptr_nonnull (fits);
  ck_assert_ptr_null (msim_trace_new (501, 1, 1, 8, 0, &err));
  tt_assert_error (err, MSIM_ERROR_LIMIT, "1002 bytes", "1000 bytes", NULL);
  g_clear_error (&err);
  restore_limit ();
}
END_TEST

START_TEST (test_set_experts_and_validate)
{
  GError *err = NULL;
  g_autoptr (MsimTrace) t = tt_random_trace (20, 3, 2, 6, MSIM_TRACE_WEIGHTS, 5);
  ck_assert_int_eq (msim_trace_max_expert (t), 5);
  ck_assert (msim_trace_set_experts (t, 64, &err));
  ck_assert_uint_eq (t->experts, 64);
  ck_assert (msim_trace_set_experts (t, 6, &err));
  ck_assert (!msim_trace_set_experts (t, 5, &err));
  tt_assert_error (err, MSIM_ERROR_INPUT, "token 0, layer 0", "expert 5", "5 experts", NULL);
  g_clear_error (&err);
  ck_assert_uint_eq (t->experts, 6);

  msim_trace_set_weight (t, 7, 2, 1, NAN);
  ck_assert (!msim_trace_validate (t, "w.csv", &err));
  tt_assert_error (err, MSIM_ERROR_INPUT, "w.csv: token 7, layer 2, rank 1",
                   "gate weight is not finite", NULL);
  g_clear_error (&err);
  msim_trace_set_weight (t, 7, 2, 1, 0.5f);
  ck_assert (msim_trace_validate (t, "w.csv", NULL));
  /* A generator bug writing through the raw row is caught too. */
  msim_trace_row_mut (t, 11, 1)[0] = 6;
  ck_assert (!msim_trace_validate (t, "gen", &err));
  tt_assert_error (err, MSIM_ERROR_INPUT, "token 11, layer 1, rank 0", "expert id 6",
                   "not below the number of experts", NULL);
  g_clear_error (&err);
}
END_TEST

START_TEST (test_count_layer)
{
  g_autoptr (MsimTrace) t = msim_trace_new (4, 2, 2, 5, 0, NULL);
  const int rows[4][2] = { { 0, 1 }, { 0, 2 }, { 1, 0 }, { 3, 0 } };
  for (int tok = 0; tok < 4; tok++)
    for (int l = 0; l < 2; l++)
      for (int r = 0; r < 2; r++)
        msim_trace_set_expert (t, tok, l, r, l == 0 ? rows[tok][r] : 4);
  guint64 load[5], top1[5];
  msim_trace_count_layer (t, 0, load, top1);
  const guint64 want_load[5] = { 4, 2, 1, 1, 0 }, want_top1[5] = { 2, 1, 0, 1, 0 };
  for (int e = 0; e < 5; e++)
    {
      ck_assert_uint_eq (load[e], want_load[e]);
      ck_assert_uint_eq (top1[e], want_top1[e]);
    }
  msim_trace_count_layer (t, 1, load, NULL);
  ck_assert_uint_eq (load[4], 8);
  ck_assert_uint_eq (load[0], 0);
}
END_TEST

/* Bit-at-a-time reference CRC-32 for checking the sliced implementation. */
static guint32
crc_ref (const guint8 *p, gsize n)
{
  guint32 c = 0xFFFFFFFFu;
  for (gsize i = 0; i < n; i++)
    {
      c ^= p[i];
      for (int b = 0; b < 8; b++)
        c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    }
  return ~c;
}

START_TEST (test_crc32)
{
  ck_assert_uint_eq (msim_crc32_update (0, "123456789", 9), 0xCBF43926u);
  ck_assert_uint_eq (msim_crc32_update (0, "", 0), 0);
  ck_assert_uint_eq (msim_crc32_update (0, "a", 1), 0xE8B7BE43u);
  guint8 buf[1031];
  for (gsize i = 0; i < sizeof buf; i++)
    buf[i] = (guint8)(i * 131 + 7);
  /* Every alignment and every split point agrees with the reference. */
  for (gsize off = 0; off < 9; off++)
    {
      guint32 want = crc_ref (buf + off, sizeof buf - off);
      ck_assert_uint_eq (msim_crc32_update (0, buf + off, sizeof buf - off), want);
      for (gsize cut = 0; cut < 40; cut += 3)
        {
          guint32 c = msim_crc32_update (0, buf + off, cut);
          c = msim_crc32_update (c, buf + off + cut, sizeof buf - off - cut);
          ck_assert_uint_eq (c, want);
        }
    }
}
END_TEST

START_TEST (test_format_names)
{
  MsimTraceFormat f;
  ck_assert (msim_trace_format_parse ("npy", &f) && f == MSIM_TRACE_FORMAT_NPY);
  ck_assert (msim_trace_format_parse ("CSV", &f) && f == MSIM_TRACE_FORMAT_CSV);
  ck_assert (msim_trace_format_parse ("json", &f) && f == MSIM_TRACE_FORMAT_JSON);
  ck_assert (msim_trace_format_parse ("mtr", &f) && f == MSIM_TRACE_FORMAT_NATIVE);
  ck_assert (msim_trace_format_parse ("native", &f) && f == MSIM_TRACE_FORMAT_NATIVE);
  ck_assert (!msim_trace_format_parse ("parquet", &f));
  ck_assert_int_eq (msim_trace_format_from_path ("a/b.NPY"), MSIM_TRACE_FORMAT_NPY);
  ck_assert_int_eq (msim_trace_format_from_path ("x.json"), MSIM_TRACE_FORMAT_JSON);
  ck_assert_int_eq (msim_trace_format_from_path ("x.mtr"), MSIM_TRACE_FORMAT_NATIVE);
  ck_assert_int_eq (msim_trace_format_from_path ("x.csv"), MSIM_TRACE_FORMAT_CSV);
  ck_assert_int_eq (msim_trace_format_from_path ("dir.npy/file"), MSIM_TRACE_FORMAT_AUTO);
  ck_assert_int_eq (msim_trace_format_from_path ("trace"), MSIM_TRACE_FORMAT_AUTO);
  ck_assert_str_eq (msim_trace_format_name (MSIM_TRACE_FORMAT_NATIVE), "mtr");
  ck_assert_int_eq (msim_trace_format_flags (MSIM_TRACE_FORMAT_CSV),
                    MSIM_TRACE_WEIGHTS | MSIM_TRACE_SEQUENCES);
  ck_assert_int_eq (msim_trace_format_flags (MSIM_TRACE_FORMAT_NPY), MSIM_TRACE_NONE);
}
END_TEST

/* Saves @t as DIR/NAME and loads it back. */
static MsimTrace *
round_trip (const MsimTrace *t, const char *dir, const char *name)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);
  GError *err = NULL;
  ck_assert_msg (msim_trace_save (t, path, MSIM_TRACE_FORMAT_AUTO, &err), "%s: %s", name,
                 err ? err->message : "?");
  MsimTrace *back = msim_trace_load (path, &err);
  ck_assert_msg (back != NULL, "%s: %s", name, err ? err->message : "?");
  return back;
}

START_TEST (test_round_trip_all_formats)
{
  g_autofree char *dir = tt_tmpdir ();
  const struct
  {
    gsize tokens;
    guint layers, k, experts;
  } shapes[] = { { 37, 5, 3, 11 }, { 1, 1, 1, 1 }, { 64, 2, 1, 300 }, { 9, 3, 8, 32768 } };
  for (gsize s = 0; s < G_N_ELEMENTS (shapes); s++)
    for (int with_opt = 0; with_opt < 2; with_opt++)
      {
        MsimTraceFlags flags = with_opt ? MSIM_TRACE_WEIGHTS | MSIM_TRACE_SEQUENCES : 0;
        g_autoptr (MsimTrace) t = tt_random_trace (shapes[s].tokens, shapes[s].layers, shapes[s].k,
                                                   shapes[s].experts, flags, 11 + s);
        const char *names[] = { "t.npy", "t.csv", "t.json", "t.mtr" };
        for (gsize f = 0; f < G_N_ELEMENTS (names); f++)
          {
            g_autoptr (MsimTrace) back = round_trip (t, dir, names[f]);
            MsimTraceFormat fmt = msim_trace_format_from_path (names[f]);
            if ((flags & ~msim_trace_format_flags (fmt)) == 0)
              ck_assert_msg (msim_trace_equal (t, back), "%s shape %zu flags %d differs", names[f],
                             (size_t)s, flags);
            else
              {
                tt_assert_same_ids (t, back);
                ck_assert_uint_eq (back->experts, t->experts); /* id E-1 occurs */
                ck_assert_int_eq (back->flags, flags & msim_trace_format_flags (fmt));
              }
          }
      }
  /* E is stored only natively; the others give max id + 1. */
  g_autoptr (MsimTrace) t = tt_random_trace (10, 2, 2, 6, 0, 3);
  ck_assert (msim_trace_set_experts (t, 64, NULL));
  g_autoptr (MsimTrace) native = round_trip (t, dir, "e.mtr");
  ck_assert_uint_eq (native->experts, 64);
  g_autoptr (MsimTrace) csv = round_trip (t, dir, "e.csv");
  ck_assert_uint_eq (csv->experts, 6);
  tt_rmtree (dir);
}
END_TEST

START_TEST (test_save_is_atomic)
{
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *path = g_build_filename (dir, "keep.csv", NULL);
  GError *err = NULL;
  g_autoptr (MsimTrace) good = tt_random_trace (5, 2, 2, 4, 0, 1);
  ck_assert (msim_trace_save (good, path, MSIM_TRACE_FORMAT_AUTO, &err));
  g_autofree char *before = NULL;
  ck_assert (g_file_get_contents (path, &before, NULL, NULL));

  /* A trace with an unset cell is refused before the file is touched. */
  g_autoptr (MsimTrace) bad = msim_trace_new (5, 2, 2, 4, 0, NULL);
  ck_assert (!msim_trace_save (bad, path, MSIM_TRACE_FORMAT_CSV, &err));
  tt_assert_error (err, MSIM_ERROR_INPUT, path, "cannot save", "token 0, layer 0, rank 0", NULL);
  g_clear_error (&err);
  g_autofree char *after = NULL;
  ck_assert (g_file_get_contents (path, &after, NULL, NULL));
  ck_assert_str_eq (before, after);
  ck_assert_int_eq (tt_count_entries (dir), 1); /* no temporary left behind */

  /* Overwriting replaces the whole file. */
  g_autoptr (MsimTrace) other = tt_random_trace (3, 1, 1, 2, 0, 2);
  ck_assert (msim_trace_save (other, path, MSIM_TRACE_FORMAT_AUTO, &err));
  g_autoptr (MsimTrace) back = msim_trace_load (path, &err);
  ck_assert (msim_trace_equal (back, other));
  ck_assert_int_eq (tt_count_entries (dir), 1);

  /* Unwritable places and unknown extensions are clear errors. */
  g_autofree char *nodir = g_build_filename (dir, "no", "such", "x.mtr", NULL);
  ck_assert (!msim_trace_save (good, nodir, MSIM_TRACE_FORMAT_AUTO, &err));
  tt_assert_error (err, MSIM_ERROR_IO, nodir, "cannot create", NULL);
  g_clear_error (&err);
  g_autofree char *noext = g_build_filename (dir, "x.parquet", NULL);
  ck_assert (!msim_trace_save (good, noext, MSIM_TRACE_FORMAT_AUTO, &err));
  tt_assert_error (err, MSIM_ERROR_INPUT, "x.parquet", "extension", NULL);
  g_clear_error (&err);
  ck_assert_int_eq (tt_count_entries (dir), 1);
  tt_rmtree (dir);
}
END_TEST

START_TEST (test_detection)
{
  g_autofree char *dir = tt_tmpdir ();
  g_autoptr (MsimTrace) t = tt_random_trace (6, 2, 2, 5, 0, 4);
  /* Content wins over a misleading extension. */
  g_autofree char *npy_as_csv = g_build_filename (dir, "really-npy.csv", NULL);
  ck_assert (msim_trace_save (t, npy_as_csv, MSIM_TRACE_FORMAT_NPY, NULL));
  g_autoptr (MsimTrace) a = msim_trace_load (npy_as_csv, NULL);
  ck_assert (a && msim_trace_equal (a, t));
  g_autofree char *json_dat = g_build_filename (dir, "trace.dat", NULL);
  ck_assert (msim_trace_save (t, json_dat, MSIM_TRACE_FORMAT_JSON, NULL));
  g_autoptr (MsimTrace) b = msim_trace_load (json_dat, NULL);
  ck_assert (b && msim_trace_equal (b, t));
  g_autofree char *mtr_txt = g_build_filename (dir, "trace.txt", NULL);
  ck_assert (msim_trace_save (t, mtr_txt, MSIM_TRACE_FORMAT_NATIVE, NULL));
  g_autoptr (MsimTrace) c = msim_trace_load (mtr_txt, NULL);
  ck_assert (c && msim_trace_equal (c, t));
  /* CSV has no magic: recognised by its header when the extension is odd. */
  g_autofree char *csv_txt = tt_write_str (dir, "rows.txt", "token,layer,rank,expert\n0,0,0,3\n");
  g_autoptr (MsimTrace) d = msim_trace_load (csv_txt, NULL);
  ck_assert (d && d->tokens == 1 && d->experts == 4);
  /* An explicit format overrides detection. */
  GError *err = NULL;
  g_autoptr (MsimTrace) e = msim_trace_load_format (json_dat, MSIM_TRACE_FORMAT_NPY, &err);
  ck_assert_ptr_null (e);
  tt_assert_error (err, MSIM_ERROR_INPUT, json_dat, "byte 0", "not a NumPy", NULL);
  g_clear_error (&err);

  g_autofree char *garbage = tt_write_str (dir, "x.dat", "hello\n");
  err = tt_load_error (garbage);
  tt_assert_error (err, MSIM_ERROR_INPUT, garbage, "cannot tell the trace format", NULL);
  g_clear_error (&err);
  g_autofree char *empty = tt_write_str (dir, "empty.json", "");
  err = tt_load_error (empty);
  tt_assert_error (err, MSIM_ERROR_INPUT, empty, "empty file", NULL);
  g_clear_error (&err);
  err = tt_load_error (dir);
  tt_assert_error (err, MSIM_ERROR_IO, dir, "is a directory", NULL);
  g_clear_error (&err);
  g_autofree char *missing = g_build_filename (dir, "missing.npy", NULL);
  err = tt_load_error (missing);
  tt_assert_error (err, MSIM_ERROR_IO, missing, "cannot open", NULL);
  g_clear_error (&err);

  /* From memory, with the given name in messages. */
  const char *csv = "token,layer,rank,expert\n0,0,0,2\n1,0,0,x\n";
  g_autoptr (MsimTrace) m
      = msim_trace_load_data (csv, strlen (csv), "mem.csv", MSIM_TRACE_FORMAT_AUTO, &err);
  ck_assert_ptr_null (m);
  tt_assert_error (err, MSIM_ERROR_INPUT, "mem.csv:3:", NULL);
  g_clear_error (&err);
  tt_rmtree (dir);
}
END_TEST


/* Concatenation: tokens one after the other, sequence ids offset past the
 * previous inputs' (an input without sequences is one sequence), E the
 * largest, weights only if all have them, dropped cells kept; a shape
 * mismatch names both files; loading files raises E or names the file. */
START_TEST (test_concat)
{
  GError *err = NULL;
  g_autoptr (MsimTrace) a
      = msim_trace_new (3, 2, 1, 4, MSIM_TRACE_WEIGHTS | MSIM_TRACE_SEQUENCES, &err);
  g_autoptr (MsimTrace) b = msim_trace_new (2, 2, 1, 6, MSIM_TRACE_DROPS, &err);
  ck_assert_ptr_nonnull (a);
  ck_assert_ptr_nonnull (b);
  const guint32 seq[3] = { 0, 2, 2 }, pos[3] = { 0, 0, 1 };
  for (gsize t = 0; t < 3; t++)
    {
      msim_trace_set_sequence (a, t, seq[t], pos[t]);
      for (guint l = 0; l < 2; l++)
        {
          msim_trace_set_expert (a, t, l, 0, (int)(t + l));
          msim_trace_set_weight (a, t, l, 0, 0.5f);
        }
    }
  for (gsize t = 0; t < 2; t++)
    for (guint l = 0; l < 2; l++)
      msim_trace_set_expert (b, t, l, 0, t == 1 && l == 0 ? MSIM_EXPERT_NONE : 5);
  MsimTrace *in[] = { a, b };
  const char *names[] = { "a.csv", "b.csv" };
  g_autoptr (MsimTrace) c = msim_trace_concat (in, names, 2, &err);
  ck_assert_msg (c != NULL, "%s", err ? err->message : "");
  ck_assert_uint_eq (c->tokens, 5);
  ck_assert_uint_eq (c->experts, 6);
  ck_assert_uint_eq (c->flags, MSIM_TRACE_SEQUENCES | MSIM_TRACE_DROPS);
  ck_assert (msim_trace_validate (c, "concat", &err));
  for (gsize t = 0; t < 3; t++)
    {
      ck_assert_uint_eq (msim_trace_sequence (c, t), seq[t]);
      ck_assert_uint_eq (msim_trace_position (c, t), pos[t]);
      ck_assert_int_eq (msim_trace_expert (c, t, 1, 0), (int)(t + 1));
    }
  /* b had no sequences: one sequence, numbered after a's largest (2). */
  ck_assert_uint_eq (msim_trace_sequence (c, 3), 3);
  ck_assert_uint_eq (msim_trace_sequence (c, 4), 3);
  ck_assert_uint_eq (msim_trace_position (c, 4), 1);
  ck_assert_int_eq (msim_trace_expert (c, 4, 0, 0), MSIM_EXPERT_NONE);
  ck_assert_int_eq (msim_trace_expert (c, 4, 1, 0), 5);

  g_autoptr (MsimTrace) k2 = msim_trace_new (1, 2, 2, 4, 0, &err);
  MsimTrace *bad[] = { a, k2 };
  const char *bad_names[] = { "a.csv", "k2.csv" };
  ck_assert_ptr_null (msim_trace_concat (bad, bad_names, 2, &err));
  tt_assert_error (err, MSIM_ERROR_INPUT, "k2.csv", "a.csv", "top-2", NULL);
  g_clear_error (&err);

  /* From files: --experts raises E; an id beyond it names the file. */
  g_autofree char *dir = tt_tmpdir ();
  g_autofree char *pa = g_build_filename (dir, "a.mtr", NULL);
  g_autofree char *pb = g_build_filename (dir, "b.mtr", NULL);
  ck_assert (msim_trace_save (a, pa, MSIM_TRACE_FORMAT_AUTO, &err));
  ck_assert (msim_trace_save (b, pb, MSIM_TRACE_FORMAT_AUTO, &err));
  const char *paths[] = { pa, pb, NULL };
  g_autoptr (MsimTrace) f = msim_trace_load_files (paths, 8, &err);
  ck_assert_msg (f != NULL, "%s", err ? err->message : "");
  ck_assert_uint_eq (f->tokens, 5);
  ck_assert_uint_eq (f->experts, 8);
  ck_assert_int_eq (msim_trace_expert (f, 4, 1, 0), 5);
  ck_assert_ptr_null (msim_trace_load_files (paths, 5, &err));
  tt_assert_error (err, MSIM_ERROR_INPUT, "b.mtr", "--experts 5", NULL);
  g_clear_error (&err);
  const char *none[] = { NULL };
  ck_assert_ptr_null (msim_trace_load_files (none, 0, &err));
  tt_assert_error (err, MSIM_ERROR_INPUT, "no trace", NULL);
  g_clear_error (&err);
  tt_rmtree (dir);
}
END_TEST

static Suite *
trace_suite (void)
{
  Suite *s = suite_create ("trace");
  struct
  {
    const char *name;
    const TTest *fn;
  } cases[] = {
    { "new", test_new_and_accessors },      { "bad_shapes", test_bad_shapes },
    { "memory_limit", test_memory_limit },  { "validate", test_set_experts_and_validate },
    { "count", test_count_layer },          { "crc32", test_crc32 },
    { "formats", test_format_names },       { "round_trip", test_round_trip_all_formats },
    { "atomic_save", test_save_is_atomic }, { "detection", test_detection },
    { "concat", test_concat },
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

MSIM_CHECK_MAIN (trace_suite)
