"""The history store's tests, run again on a real PostgreSQL: both back ends pass the same tests.

The test functions are the unit and in-process layers' (tests/unit/test_dashboard_history.py, and the store tests
of tests/unit/test_history_charts.py, tests/inprocess/test_dashboard_stored_text.py and test_history_writer.py,
where ``history_db`` is a SQLite file); here ``history_db`` is a fresh database in the session's throwaway PostgreSQL cluster
(tests/support/postgres.py), so they run in this layer (the cluster is a subprocess).
"""

from __future__ import annotations

import pytest

from tests.inprocess.test_dashboard_stored_text import (
    test_a_history_of_huge_names_stays_a_small_refresh, test_csv_export_neutralises_formulas_in_every_text_column,
    test_inserting_beyond_max_rows_keeps_the_newest, test_other_stored_strings_are_capped_and_cleaned,
    test_rows_older_than_the_age_limit_go, test_the_store_cleans_names_as_its_last_line_of_defence)
from tests.inprocess.test_history_writer import (
    api, test_8_threads_x_200_requests_lose_no_row_and_keep_each_threads_order,
    test_a_full_queue_writes_on_the_callers_thread_instead_of_dropping,
    test_a_request_is_in_the_api_history_as_soon_as_it_returned, test_rows_submitted_after_close_are_written_directly)
from tests.unit.test_dashboard_history import (
    test_clear_and_csv_export, test_keeps_records_across_reopen, test_monolith_rows_as_the_command_line_records_them,
    test_summary_percentiles_and_speedup, test_threads_write_concurrently_without_losing_rows,
    test_unknown_kind_is_refused)
from tests.unit.test_history_charts import (
    test_alone_means_batch_1_and_under_1_ms_queued, test_browsers_polling_unchanged_data_share_one_computed_view,
    test_five_thousand_steady_requests_are_all_in_the_time_view, test_four_requests_over_six_hours_are_all_in_the_time_view,
    test_few_requests_are_drawn_one_by_one_without_lines, test_many_requests_are_aggregated_broken_at_gaps_and_stay_small,
    test_store_percentiles_are_exact_with_100000_rows, test_the_alone_card_names_the_runtime_once_the_backend_reports_it,
    test_the_table_puts_the_result_first_and_explains_each_latency, test_the_time_view_starts_after_an_idle_gap,
    test_three_bursts_a_day_apart_are_all_shown_with_the_idle_days_cut_out)
from tests.unit.test_history_percentiles import (
    test_an_unsampled_view_reads_every_request_and_an_empty_group_has_no_buckets,
    test_group_and_kind_percentiles_match_numpy_and_an_empty_group_reads_none,
    test_time_buckets_are_numpys_percentiles_of_the_same_sample)

#: collected here again, on PostgreSQL
__all__ = [
    "api",  # the fixture those tests use
    "test_8_threads_x_200_requests_lose_no_row_and_keep_each_threads_order",
    "test_a_full_queue_writes_on_the_callers_thread_instead_of_dropping",
    "test_a_request_is_in_the_api_history_as_soon_as_it_returned",
    "test_rows_submitted_after_close_are_written_directly",
    "test_clear_and_csv_export",
    "test_keeps_records_across_reopen",
    "test_monolith_rows_as_the_command_line_records_them",
    "test_summary_percentiles_and_speedup",
    "test_threads_write_concurrently_without_losing_rows",
    "test_unknown_kind_is_refused",
    "test_alone_means_batch_1_and_under_1_ms_queued",
    "test_browsers_polling_unchanged_data_share_one_computed_view",
    "test_five_thousand_steady_requests_are_all_in_the_time_view",
    "test_four_requests_over_six_hours_are_all_in_the_time_view",
    "test_few_requests_are_drawn_one_by_one_without_lines",
    "test_many_requests_are_aggregated_broken_at_gaps_and_stay_small",
    "test_store_percentiles_are_exact_with_100000_rows",
    "test_the_alone_card_names_the_runtime_once_the_backend_reports_it",
    "test_the_table_puts_the_result_first_and_explains_each_latency",
    "test_the_time_view_starts_after_an_idle_gap",
    "test_three_bursts_a_day_apart_are_all_shown_with_the_idle_days_cut_out",
    "test_a_history_of_huge_names_stays_a_small_refresh",
    "test_csv_export_neutralises_formulas_in_every_text_column",
    "test_inserting_beyond_max_rows_keeps_the_newest",
    "test_other_stored_strings_are_capped_and_cleaned",
    "test_rows_older_than_the_age_limit_go",
    "test_the_store_cleans_names_as_its_last_line_of_defence",
    "test_an_unsampled_view_reads_every_request_and_an_empty_group_has_no_buckets",
    "test_group_and_kind_percentiles_match_numpy_and_an_empty_group_reads_none",
    "test_time_buckets_are_numpys_percentiles_of_the_same_sample",
]


@pytest.fixture
def history_db(postgres_url):
    return postgres_url
