-- A not-applicable answer (0 in raw) is never a score: its rating is null, and a rating is
-- null only when the answer was not applicable.

select
    survey_id,
    service,
    rating,
    is_not_applicable
from {{ ref('fct_service_ratings') }}
where (is_not_applicable and rating is not null)
    or (not is_not_applicable and rating is null)
