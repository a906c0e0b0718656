#pragma once

#include <glib.h>

G_BEGIN_DECLS

/*
 * MsimTrace: which experts each token visits, layer by layer.
 *
 * A trace is a dense tokens x layers x k array of expert ids (rank 0 is the
 * top-1 choice), the number of experts E per layer, and optionally
 *   - gate weights (float, same shape), and
 *   - per-token sequence id and position within the sequence (guint32),
 *     which segment metrics and decode replay need.
 * Importers, synthetic generators and routers all produce this one form, so
 * everything downstream is router-agnostic.
 *
 * Storage is layer-major, [layer][token][rank]: the step runner, the
 * all-to-all sizing and per-layer load statistics walk one layer across all
 * tokens of a batch, which is then a contiguous scan; inter-layer affinity
 * walks two adjacent layers, i.e. two sequential streams.  Token-major
 * storage (what NumPy [T, L, k] C order is) would make every per-layer scan
 * stride by L*k ids, one cache line per token for Mixtral.
 *
 * Expert ids are stored as int16 (MsimExpertId): E <= 32768 covers every
 * MoE in use (Mixtral 8, DeepSeek-V3 256, Kimi-K2 384) and int16 halves the
 * memory and the bandwidth of every scan compared with int32, which matters
 * because traces are the largest inputs the simulator holds (10 M tokens x
 * 61 layers x top-8 is 9.8 GB as int16, 19.5 GB as int32).  The type is
 * signed so that an unset cell (-1, see msim_trace_new) and a negative id
 * from a buggy writer are caught by validation rather than wrapping to a
 * plausible large id.  The native file header carries an id dtype field, so
 * an int32 variant can be added without a format break if a model ever needs
 * more experts.
 *
 * The struct body is public only so that the accessors below can be inlined
 * into hot loops; treat every field as read-only and use the functions.
 */

typedef gint16 MsimExpertId;

/* Largest supported number of experts per layer (ids 0..32767). */
#define MSIM_TRACE_MAX_EXPERTS 32768u

/* Default for msim_trace_set_memory_limit(): 8 GiB. */
#define MSIM_TRACE_DEFAULT_MEMORY_LIMIT (G_GUINT64_CONSTANT (8) << 30)

/* The id of a cell that names no expert: an assignment dropped by a
 * router's capacity limit, or an unused slot of expert-choice routing.  Only
 * traces with MSIM_TRACE_DROPS may hold it (see there). */
#define MSIM_EXPERT_NONE (-1)

typedef enum
{
  MSIM_TRACE_NONE = 0,
  MSIM_TRACE_WEIGHTS = 1 << 0,   /* gate weights, float [L][T][k] */
  MSIM_TRACE_SEQUENCES = 1 << 1, /* sequence id and position per token */
  /* Cells may be MSIM_EXPERT_NONE (-1): the assignment was dropped (router
   * capacity, workloads/router.h) or the slot is unused (expert-choice
   * routing gives a token 0..E experts, stored in k = E slots).  Every
   * consumer of such a trace must skip negative ids, as msim_trace_count_layer
   * and the step runner do.  Importers never set it; routers set it only
   * when they write such cells, and only the native .mtr format stores it
   * (msim_trace_save refuses to write -1 cells to the other formats).  With
   * the flag, validation cannot tell a cell a writer forgot from a dropped
   * one, so writers that set it fill every cell explicitly. */
  MSIM_TRACE_DROPS = 1 << 2,
} MsimTraceFlags;

#define MSIM_TRACE_ALL_FLAGS (MSIM_TRACE_WEIGHTS | MSIM_TRACE_SEQUENCES | MSIM_TRACE_DROPS)

typedef struct _MsimTrace MsimTrace;

struct _MsimTrace
{
  /*< read-only >*/
  gsize tokens;
  guint layers;
  guint k;
  guint experts;
  MsimTraceFlags flags;
  /*< private >*/
  MsimExpertId *ids;  /* [layers][tokens][k] */
  float *weights;     /* same shape, or NULL */
  guint32 *sequences; /* [tokens], or NULL */
  guint32 *positions; /* [tokens], or NULL */
  gpointer storage;   /* heap block or GMappedFile the arrays point into */
  gboolean mapped;
};

/* ------------------------------------------------------------------ */
/* Construction (for importers, generators and routers)                 */
/* ------------------------------------------------------------------ */

/*
 * A trace of @tokens x @layers x @k expert ids for a model with @experts
 * experts per layer, with the optional arrays named in @flags.  Every id
 * starts as -1 (unset) so that msim_trace_validate() catches cells a writer
 * forgot; weights start at 0, sequences at 0 and positions at the token
 * index (one long sequence).
 *
 * The sizes are checked against the memory limit before anything is
 * allocated: NULL with MSIM_ERROR_LIMIT when the arrays would need more than
 * msim_trace_get_memory_limit() bytes or cannot be allocated, MSIM_ERROR_INPUT
 * when a dimension is zero or @experts is outside 1..MSIM_TRACE_MAX_EXPERTS.
 * Returns (transfer full).  Cost: one allocation, one memset of the ids.
 */
MsimTrace *msim_trace_new (gsize tokens, guint layers, guint k, guint experts, MsimTraceFlags flags,
                           GError **error);

void msim_trace_free (MsimTrace *trace);

/* Bytes the arrays of such a trace need; FALSE if that overflows 64 bits. */
gboolean msim_trace_bytes_needed (guint64 tokens, guint64 layers, guint64 k, MsimTraceFlags flags,
                                  guint64 *bytes);

/* Process-wide limit on the bytes one trace may allocate (default
 * MSIM_TRACE_DEFAULT_MEMORY_LIMIT).  It guards against a header or a CSV typo
 * that declares 10^12 tokens; it does not apply to native traces that are
 * memory-mapped, whose pages the kernel can drop and re-read at will.
 * Thread-safe. */
void msim_trace_set_memory_limit (guint64 bytes);
guint64 msim_trace_get_memory_limit (void);

/* Sets one id.  Range checks are g_return_if_fail (programmer errors:
 * generators and routers compute ids, they do not read them);
 * MSIM_EXPERT_NONE is accepted when the trace has MSIM_TRACE_DROPS. */
void msim_trace_set_expert (MsimTrace *trace, gsize token, guint layer, guint rank, int expert);
void msim_trace_set_weight (MsimTrace *trace, gsize token, guint layer, guint rank, float weight);
void msim_trace_set_sequence (MsimTrace *trace, gsize token, guint32 sequence, guint32 position);

/* Changes E, e.g. to the model's expert count after loading a format that
 * does not store it (NumPy, CSV and JSON traces get max id + 1).  Fails with
 * MSIM_ERROR_INPUT if an id is >= @experts; O(T L k). */
gboolean msim_trace_set_experts (MsimTrace *trace, guint experts, GError **error);

/* Largest expert id in the trace, -1 if it has an unset cell; O(T L k).
 * With MSIM_TRACE_DROPS, -1 cells are skipped (-1 only if every cell is). */
int msim_trace_max_expert (const MsimTrace *trace);

/*
 * Checks every id is in [0, E) (or MSIM_EXPERT_NONE when the trace has
 * MSIM_TRACE_DROPS) and every weight is finite.  @name (e.g. the
 * file or generator name) starts the message, which also names the token,
 * layer and rank of the first bad cell.  MSIM_ERROR_INPUT.  O(T L k).
 */
gboolean msim_trace_validate (const MsimTrace *trace, const char *name, GError **error);

/* TRUE when both traces have the same shape, E, flags and contents
 * (weights compared bit for bit). */
gboolean msim_trace_equal (const MsimTrace *a, const MsimTrace *b);

/* TRUE when the id arrays live in a private (copy-on-write) file mapping
 * rather than on the heap; see msim_trace_load(). */
gboolean msim_trace_is_mapped (const MsimTrace *trace);

/* Per-expert counts of @layer: @load[e] = assignments to e over all k ranks,
 * @top1[e] = tokens whose rank-0 expert is e.  Either may be NULL; both have
 * E entries and are overwritten.  Unset cells are skipped.  O(T k). */
void msim_trace_count_layer (const MsimTrace *trace, guint layer, guint64 *load, guint64 *top1);

/* ------------------------------------------------------------------ */
/* Hot-loop accessors (inline, no bounds checks unless MSIM_DEBUG_CHECKS) */
/* ------------------------------------------------------------------ */

#ifdef MSIM_DEBUG_CHECKS
#define MSIM_TRACE_CHECK_(expr) g_assert (expr)
#else
#define MSIM_TRACE_CHECK_(expr) ((void)0)
#endif

/* The k ids of @token at @layer, rank order (rank 0 = top-1). */
static inline const MsimExpertId *
msim_trace_row (const MsimTrace *t, gsize token, guint layer)
{
  MSIM_TRACE_CHECK_ (token < t->tokens && layer < t->layers);
  return t->ids + ((gsize)layer * t->tokens + token) * t->k;
}

/* Writable row, for generators and routers. */
static inline MsimExpertId *
msim_trace_row_mut (MsimTrace *t, gsize token, guint layer)
{
  MSIM_TRACE_CHECK_ (token < t->tokens && layer < t->layers);
  return t->ids + ((gsize)layer * t->tokens + token) * t->k;
}

/* All tokens of @layer: tokens * k ids, token-major within the layer. */
static inline const MsimExpertId *
msim_trace_layer_ids (const MsimTrace *t, guint layer)
{
  MSIM_TRACE_CHECK_ (layer < t->layers);
  return t->ids + (gsize)layer * t->tokens * t->k;
}

static inline int
msim_trace_expert (const MsimTrace *t, gsize token, guint layer, guint rank)
{
  MSIM_TRACE_CHECK_ (rank < t->k);
  return msim_trace_row (t, token, layer)[rank];
}

/* Gate weights of @token at @layer (k floats), or NULL without weights. */
static inline const float *
msim_trace_weight_row (const MsimTrace *t, gsize token, guint layer)
{
  MSIM_TRACE_CHECK_ (token < t->tokens && layer < t->layers);
  return t->weights ? t->weights + ((gsize)layer * t->tokens + token) * t->k : NULL;
}

/* Writable weight row, for routers; NULL without weights. */
static inline float *
msim_trace_weight_row_mut (MsimTrace *t, gsize token, guint layer)
{
  MSIM_TRACE_CHECK_ (token < t->tokens && layer < t->layers);
  return t->weights ? t->weights + ((gsize)layer * t->tokens + token) * t->k : NULL;
}

/* Gate weight, or 1/k when the trace has none (an even split). */
static inline float
msim_trace_weight (const MsimTrace *t, gsize token, guint layer, guint rank)
{
  const float *w = msim_trace_weight_row (t, token, layer);
  return w ? w[rank] : 1.0f / (float)t->k;
}

/* Sequence id of @token; 0 when the trace has no sequence data. */
static inline guint32
msim_trace_sequence (const MsimTrace *t, gsize token)
{
  MSIM_TRACE_CHECK_ (token < t->tokens);
  return t->sequences ? t->sequences[token] : 0;
}

/* Position of @token in its sequence; the token index when the trace has no
 * sequence data (the whole trace is one sequence). */
static inline guint32
msim_trace_position (const MsimTrace *t, gsize token)
{
  MSIM_TRACE_CHECK_ (token < t->tokens);
  return t->positions ? t->positions[token] : (guint32)token;
}

/* ------------------------------------------------------------------ */
/* Files                                                                */
/* ------------------------------------------------------------------ */

typedef enum
{
  MSIM_TRACE_FORMAT_AUTO = 0, /* load: sniff magic, then extension; save: extension */
  MSIM_TRACE_FORMAT_NPY,      /* NumPy .npy, [T, L] or [T, L, k] integers */
  MSIM_TRACE_FORMAT_CSV,      /* token,layer,rank,expert[,weight][,sequence,position] */
  MSIM_TRACE_FORMAT_JSON,     /* layer-keyed {"0": [[e1, e2], ...], ...} */
  MSIM_TRACE_FORMAT_NATIVE,   /* moesim .mtr: versioned header, CRC32, mmap-able */
} MsimTraceFormat;

/* "npy", "csv", "json", "mtr" ("auto" for AUTO). */
const char *msim_trace_format_name (MsimTraceFormat format);

/* Parses a --format value (the names above, "native" = "mtr"). */
gboolean msim_trace_format_parse (const char *name, MsimTraceFormat *format);

/* Format from @path's extension (case-insensitive); AUTO when unknown. */
MsimTraceFormat msim_trace_format_from_path (const char *path);

/* The optional data (MsimTraceFlags) @format can store.  Saving a trace with
 * more drops the rest; E is stored only by NATIVE (the others reload with
 * E = max id + 1).  MSIM_TRACE_DROPS is NATIVE only: saving a trace that has
 * -1 cells in another format is an error, a trace with the flag but no such
 * cell is saved without it. */
MsimTraceFlags msim_trace_format_flags (MsimTraceFormat format);

/*
 * Loads a trace, detecting the format from the file's first bytes (NumPy
 * and native magic, '{' for JSON) and then its extension (.csv).  Every file
 * is read through a GMappedFile, so the only heap memory is the trace itself;
 * a native .mtr file is not copied at all on little-endian hosts: the trace
 * points into a private copy-on-write mapping, so a trace larger than RAM
 * is paged, not loaded twice.  Loaded traces are validated.
 *
 * Errors (MSIM_ERROR_INPUT / _LIMIT / _IO) start with @path and name the
 * line, byte offset, layer or token where the problem is.
 * Returns (transfer full) or NULL.
 */
MsimTrace *msim_trace_load (const char *path, GError **error);

/*
 * The tokens of @n traces one after the other.  All must have the same
 * layers and k; E is the largest.  Each input becomes its own sequence(s):
 * sequence ids of input i are offset past those of inputs 0..i-1, and an
 * input without sequence data is one sequence.  Gate weights are kept only
 * if every input has them; dropped assignments (MSIM_TRACE_DROPS) are kept.
 * MSIM_ERROR_INPUT naming @names[i] on a shape mismatch.  (transfer full)
 */
MsimTrace *msim_trace_concat (MsimTrace *const *traces, const char *const *names, guint n,
                              GError **error);

/* Loads every file of the NULL-terminated @paths (any trace format),
 * raises E to @experts when it is > 0 (an id >= @experts is an error naming
 * the file), and concatenates them when there are several.  (transfer full) */
MsimTrace *msim_trace_load_files (const char *const *paths, guint experts, GError **error);

/* Same with an explicit format (AUTO = detect). */
MsimTrace *msim_trace_load_format (const char *path, MsimTraceFormat format, GError **error);

/* Same from memory; @name stands for the file in messages.  The data is
 * copied into the trace (no mapping). */
MsimTrace *msim_trace_load_data (const void *data, gsize length, const char *name,
                                 MsimTraceFormat format, GError **error);

/*
 * Writes @trace to @path in @format (AUTO = from the extension, error if it
 * is not one of .npy .csv .json .mtr).  Written to a temporary file in the
 * same directory, flushed to disk and renamed over @path, so readers see
 * either the old file or the complete new one, never a partial trace; on
 * error the temporary file is removed and @path is untouched.  Data is
 * streamed (no second copy of the trace in memory).
 */
gboolean msim_trace_save (const MsimTrace *trace, const char *path, MsimTraceFormat format,
                          GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (MsimTrace, msim_trace_free)

G_END_DECLS
